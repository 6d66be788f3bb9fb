import type { Ctx } from '../ctx.js';
import { BuildError } from '../errors.js';
import { sha256, type Digest } from '../oci/digest.js';
import { cacheKey, keyedOp, type KeyParts } from './cache-key.js';
import { checksumSelection, type SelectionChecksum } from './context-checksum.js';
import type { SelectedFiles } from './selected-files.js';
import type { ContextOp, Result, Vertex } from './graph.js';
import { PatternMatcher } from './pattern-matcher.js';
import type { RootfsSelection, SelectionMemo } from './selection-memo.js';
import { StatCache } from './stat-cache.js';

/** A vertex's cache key with what it was made of; `files` lists, per action or mount, the checksummed files. */
export interface VertexKey {
  readonly key: Digest;
  readonly parts: KeyParts;
  readonly files?: readonly (SelectedFiles | undefined)[];
}

/** An input as the keyer sees it: its key (undefined: it can't be keyed) and, once solved, its result. */
export interface KeyInput {
  readonly key: Digest | undefined;
  readonly result?: Result;
}

/** Makes a solved root filesystem readable, for checksumming what a COPY --from selects in it. */
export type RootfsOpener = (layers: readonly Digest[], ctx: Ctx) => Promise<{ readonly root: string; release(): Promise<void> }>;

/**
 * Stands in the key for an input that is keyed by the content selected from it, so that how that
 * input was made (its own key) does not count, only what is copied or mounted from it.
 */
const KEYED_BY_CONTENT = sha256('tsbuild: input keyed by the content selected from it');

/** Paths one COPY action or RUN mount reads from one input. */
interface Selection {
  readonly input: number;
  readonly srcPaths: readonly string[];
  readonly allowWildcard: boolean;
  /** COPY --parents: sources are pivot + include pattern (see ops/parents-sources.ts). */
  readonly parents?: boolean;
}

/**
 * Computes cache keys (BuildKit's CacheMap + content checksums): op definition + input keys, and
 * for COPY/ADD and RUN bind mounts the checksum of exactly the files selected. A source that is
 * another stage or an image (COPY --from, RUN --mount=from=) is keyed by that checksum alone,
 * as BuildKit's content-based cache keys do: a stage that was rebuilt but produced the same
 * files keeps the steps that copy from it cached. Returns undefined for a vertex whose result
 * can't be keyed (an image not pinned by digest, or an input without a key): it always runs,
 * and so does everything below it.
 */
export class VertexKeyer {
  readonly #stats: StatCache;
  readonly #open?: RootfsOpener;
  readonly #memo?: SelectionMemo;
  /** Selections are checksummed once per build even when several vertices copy the same files. */
  readonly #selections = new Map<string, Promise<SelectionChecksum>>();

  /**
   * @param stats remembered checksums of context files.
   * @param rootfs how to read solved inputs (without it, selections from stages can't be keyed
   *   and such a vertex is keyed by its inputs' keys); `memo` keeps their checksums across builds.
   */
  constructor(stats: StatCache, rootfs?: { open: RootfsOpener; memo?: SelectionMemo }) {
    this.#stats = stats;
    this.#open = rootfs?.open;
    this.#memo = rootfs?.memo;
  }

  /** Which inputs of `v` are keyed by the content selected from them rather than by their own keys. */
  keyedByContent(v: Vertex): ReadonlySet<number> {
    if (!this.#open) return new Set();
    const base = v.op.kind === 'exec' || (v.op.kind === 'file' && v.op.base === 'input') ? 0 : -1;
    const out = new Set<number>();
    for (const s of selectionsOf(v)) {
      if (s && s.input !== base && v.inputs[s.input]?.op.kind !== 'context') out.add(s.input);
    }
    return out;
  }

  async key(v: Vertex, inputs: readonly KeyInput[], ctx: Ctx): Promise<VertexKey | undefined> {
    const byContent = this.keyedByContent(v);
    if (inputs.some((i, n) => i.key === undefined && !byContent.has(n))) return undefined;
    const inputKeys = inputs.map((i, n) => (byContent.has(n) ? KEYED_BY_CONTENT : i.key!));
    const op = v.op;
    if (op.kind === 'image' && !op.digest) return undefined;
    // Without --checksum the content is only known after the request (which revalidates with the
    // remembered ETag, ops/http.ts): the vertex runs, and its result gives the key (resultKey).
    if (op.kind === 'http' && !op.checksum) return undefined;
    const selections = selectionsOf(v);
    // Exec keys gain a content part only when a mount reads files (older keys stay as they were).
    if (op.kind !== 'file' && !selections.some((s) => s && (byContent.has(s.input) || v.inputs[s.input]?.op.kind === 'context'))) {
      const parts: KeyParts = { op: keyedOp(op), inputs: inputKeys };
      return { key: cacheKey(parts), parts };
    }
    const files: (SelectedFiles | undefined)[] = [];
    const content: (Digest | undefined)[] = [];
    for (const s of selections) {
      const source = s && v.inputs[s.input];
      let sum: SelectionChecksum | undefined;
      if (s && source?.op.kind === 'context') sum = await this.#selectContext(source.op, s, ctx.signal);
      else if (s && byContent.has(s.input)) sum = await this.#selectRootfs(inputs[s.input]?.result, s, ctx);
      files.push(sum?.files);
      content.push(sum?.digest);
    }
    const parts: KeyParts = { op: keyedOp(op), inputs: inputKeys, content };
    return { key: cacheKey(parts), parts, files };
  }

  #selectContext(ctxOp: ContextOp, s: Selection, signal: AbortSignal): Promise<SelectionChecksum> {
    const id = JSON.stringify(['context', ctxOp.dir, ctxOp.excludes, s.srcPaths, s.allowWildcard, !!s.parents]);
    let p = this.#selections.get(id);
    if (!p) {
      const ignore = ctxOp.excludes.length ? PatternMatcher.compile(ctxOp.excludes) : undefined;
      p = checksumSelection({ root: ctxOp.dir, kind: 'context', ignore }, s, this.#stats, signal);
      this.#selections.set(id, p);
    }
    return p;
  }

  #selectRootfs(result: Result | undefined, s: Selection, ctx: Ctx): Promise<SelectionChecksum> {
    if (result?.kind !== 'rootfs') throw new BuildError('INTERNAL', 'a COPY --from source must be solved to a root filesystem before it is keyed');
    const sel: RootfsSelection = { layers: result.layers.map((l) => l.diffId), srcPaths: s.srcPaths, allowWildcard: s.allowWildcard, ...(s.parents ? { parents: true } : {}) };
    const id = JSON.stringify(['rootfs', sel]);
    let p = this.#selections.get(id);
    if (!p) {
      p = this.#checksumRootfs(sel, ctx);
      this.#selections.set(id, p);
      // A failed attempt (an abort) must not stick for the rest of the build.
      p.catch(() => this.#selections.delete(id));
    }
    return p;
  }

  async #checksumRootfs(sel: RootfsSelection, ctx: Ctx): Promise<SelectionChecksum> {
    const known = await this.#memo?.get(sel);
    if (known) return known;
    const mounted = await this.#open!(sel.layers, ctx);
    let sum: SelectionChecksum;
    try {
      // The mount point differs every time: remembering stats by path would only grow the cache.
      sum = await checksumSelection({ root: mounted.root, kind: 'rootfs' }, sel, StatCache.memory(), ctx.signal);
    } finally {
      await mounted.release();
    }
    await this.#memo?.set(sel, sum);
    return sum;
  }
}

/** /etc/passwd and /etc/group, as patterns: either may be missing when the other resolves the name. */
const NAME_FILES = ['etc/passw[d]', 'etc/grou[p]'];

/** Per FileOp action (then per --chown name lookup) or ExecOp mount, what it reads from an input (undefined for the others). */
function selectionsOf(v: Vertex): (Selection | undefined)[] {
  const op = v.op;
  if (op.kind === 'file') {
    const copies = op.actions.map((a) => (a.type === 'copy' ? { input: a.source, srcPaths: a.srcPaths, allowWildcard: a.allowWildcard, ...(a.parents ? { parents: true } : {}) } : undefined));
    // COPY --link --chown=name reads only the user and group files of the stage it goes onto.
    const names = op.actions.flatMap((a) => (a.type === 'copy' && a.chownFrom !== undefined ? [{ input: a.chownFrom, srcPaths: NAME_FILES, allowWildcard: true }] : []));
    return [...copies, ...names];
  }
  if (op.kind === 'exec') {
    // A bind (or a cache seed) depends on the files it mounts. Secrets are mounted by id only: never keyed.
    return (op.mounts ?? []).map((m) =>
      'input' in m && m.input !== undefined && 'source' in m ? { input: m.input, srcPaths: [m.source.replace(/^\/+/, '') || '.'], allowWildcard: false } : undefined,
    );
  }
  return [];
}

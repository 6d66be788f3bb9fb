import type { Digest } from '../oci/digest.js';
import { cacheKey, keyedOp, type KeyParts } from './cache-key.js';
import { checksumSelection } from './context-checksum.js';
import type { ContextOp, Vertex } from './graph.js';
import { PatternMatcher } from './pattern-matcher.js';
import type { StatCache } from './stat-cache.js';

/** A vertex's cache key with what it was made of; `files` lists, per action, the checksummed context files. */
export interface VertexKey {
  readonly key: Digest;
  readonly parts: KeyParts;
  readonly files?: readonly (ReadonlyMap<string, Digest> | undefined)[];
}

/**
 * Computes cache keys (BuildKit's CacheMap + content checksums): op definition + input keys, and
 * for COPY/ADD from the build context the checksum of exactly the files selected. Returns
 * undefined for a vertex whose result can't be keyed (an image not pinned by digest, or an
 * input without a key): it always runs, and so does everything below it.
 */
export class VertexKeyer {
  readonly #stats: StatCache;
  /** Selections are checksummed once per build even when several vertices copy the same files. */
  readonly #selections = new Map<string, ReturnType<typeof checksumSelection>>();

  constructor(stats: StatCache) {
    this.#stats = stats;
  }

  async key(v: Vertex, inputKeys: readonly (Digest | undefined)[], signal: AbortSignal): Promise<VertexKey | undefined> {
    if (inputKeys.some((k) => k === undefined)) return undefined;
    const inputs = inputKeys as readonly Digest[];
    const op = v.op;
    if (op.kind === 'image' && !op.digest) return undefined;
    // Without --checksum the content is only known after downloading: always download, and
    // everything below reruns (BuildKit keys it by the downloaded digest / ETag; not done here).
    if (op.kind === 'http' && !op.checksum) return undefined;
    if (op.kind === 'exec' && op.mounts?.some((m) => 'input' in m && m.input !== undefined && v.inputs[m.input]?.op.kind === 'context')) {
      // A bind (or cache seed) from the context depends on the files it mounts, which the
      // context op's own key does not cover. Secrets are mounted by id only: never keyed.
      const files: (ReadonlyMap<string, Digest> | undefined)[] = [];
      const content: (Digest | undefined)[] = [];
      for (const m of op.mounts) {
        const source = 'input' in m && m.input !== undefined ? v.inputs[m.input] : undefined;
        if (source?.op.kind !== 'context' || !('source' in m)) {
          files.push(undefined);
          content.push(undefined);
          continue;
        }
        const sel = await this.#select(source.op, [m.source.replace(/^\/+/, '') || '.'], false, signal);
        files.push(sel.files);
        content.push(sel.digest);
      }
      const parts: KeyParts = { op: keyedOp(op), inputs, content };
      return { key: cacheKey(parts), parts, files };
    }
    if (op.kind !== 'file') {
      const parts: KeyParts = { op: keyedOp(op), inputs };
      return { key: cacheKey(parts), parts };
    }
    const files: (ReadonlyMap<string, Digest> | undefined)[] = [];
    const content: (Digest | undefined)[] = [];
    for (const action of op.actions) {
      const source = action.type === 'copy' ? v.inputs[action.source] : undefined;
      if (action.type !== 'copy' || source?.op.kind !== 'context') {
        files.push(undefined);
        content.push(undefined);
        continue;
      }
      const sel = await this.#select(source.op, action.srcPaths, action.allowWildcard, signal);
      files.push(sel.files);
      content.push(sel.digest);
    }
    const parts: KeyParts = { op: keyedOp(op), inputs, content };
    return { key: cacheKey(parts), parts, files };
  }

  #select(ctxOp: ContextOp, srcPaths: readonly string[], allowWildcard: boolean, signal: AbortSignal): ReturnType<typeof checksumSelection> {
    const id = JSON.stringify([ctxOp.dir, ctxOp.excludes, srcPaths, allowWildcard]);
    let p = this.#selections.get(id);
    if (!p) {
      const ignore = ctxOp.excludes.length ? PatternMatcher.compile(ctxOp.excludes) : undefined;
      p = checksumSelection({ root: ctxOp.dir, kind: 'context', ignore }, srcPaths, allowWildcard, this.#stats, signal);
      this.#selections.set(id, p);
    }
    return p;
  }
}

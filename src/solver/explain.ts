import { mkdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CacheMissExplanation, ChangedFile, ChangedVar } from '../../schemas/types/progress-event.js';
import { canonicalJson } from '../oci/canonical-json.js';
import { digestHex, sha256, type Digest } from '../oci/digest.js';
import { writeFileAtomic } from '../oci/image-layout.js';
import { envName } from './cache-key.js';
import type { Vertex } from './graph.js';
import { filesJson, jsonWithMember } from './selected-files.js';
import type { VertexKey } from './vertex-keyer.js';

export type { CacheMissExplanation };

/** What was last built for one step: its key and the parts it was made of. */
export interface StepRecord {
  readonly key: Digest;
  readonly op: unknown;
  readonly inputs: readonly Digest[];
  /** Per action of a COPY/ADD from the context: [path, checksum] pairs of the files it selected (on disk: arrays). */
  readonly files?: readonly (Iterable<readonly [string, Digest]> | null)[];
}

const SHOWN = 8;

/** The record of a vertex's key, in the on-disk form. */
export function stepRecord(k: VertexKey): StepRecord {
  return { key: k.key, op: k.parts.op, inputs: k.parts.inputs, files: k.files?.map((m) => m ?? null) };
}

/** `JSON.stringify(rec)` in pieces: the file lists of a large context never exist as arrays or one string. */
function* stepRecordJson(rec: StepRecord): Generator<string> {
  const { files, ...head } = rec;
  if (!files) {
    yield JSON.stringify(head);
    return;
  }
  yield* jsonWithMember(head, 'files', filesLists(files));
}

function* filesLists(files: NonNullable<StepRecord['files']>): Generator<string> {
  yield '[';
  for (const [i, f] of files.entries()) {
    if (i > 0) yield ',';
    if (f) yield* filesJson(f);
    else yield 'null';
  }
  yield ']';
}

/**
 * Which step of which Dockerfile a vertex is, independent of its content, so this build's
 * step can be compared with the last build of the same step: the Dockerfile path plus the
 * stage label and step number from the progress name (`[build 2/5] RUN make` → `build 2`),
 * or the whole name for internal steps, and the op kind.
 */
export function stepSlot(v: Vertex): string {
  const m = /^\[([^\]]*?)\s*(\d+)\/\d+\]/.exec(v.meta.name);
  const step = m ? `${m[1]} ${m[2]}` : v.meta.name;
  // The op kind too: COPY --link is a copy and a merge under one name.
  return digestHex(sha256(canonicalJson([v.meta.location?.file ?? '', step, v.op.kind])));
}

/**
 * The last build of each step, under `<root>/cache/steps`: `<slot>.key` (small, read on every
 * hit) and `<slot>.json` (the parts, read only on a miss). Losing or mixing them up between
 * concurrent builds only makes an explanation less precise, never a build wrong.
 */
export class StepHistory {
  readonly #dir: string;
  constructor(dir: string) {
    this.#dir = dir;
  }

  async lastKey(slot: string): Promise<string | undefined> {
    // On this thread: asked on every cache hit, and a readFile is four thread-pool round trips
    // (a 200-step no-op waited ~8 ms for them at its end).
    try {
      return readFileSync(join(this.#dir, `${slot}.key`), 'utf8').trim();
    } catch {
      return undefined;
    }
  }

  async last(slot: string): Promise<StepRecord | undefined> {
    try {
      return JSON.parse(await readFile(join(this.#dir, `${slot}.json`), 'utf8')) as StepRecord;
    } catch {
      return undefined;
    }
  }

  async remember(slot: string, rec: StepRecord): Promise<void> {
    mkdirSync(this.#dir, { recursive: true });
    // Not fsynced: a file a power loss leaves empty or torn only makes an explanation less
    // precise (lastKey and last read it as absent), and two fsyncs per step competed with the build.
    await writeFileAtomic(join(this.#dir, `${slot}.json`), stepRecordJson(rec), { durable: false });
    await writeFileAtomic(join(this.#dir, `${slot}.key`), rec.key, { durable: false });
  }
}

/**
 * Why `cur` missed the cache, found by comparing it with `prev`, the last build of the same
 * step. `ignored` is set when --no-cache or --no-cache-filter made the step skip the cache.
 */
export function explainMiss(prev: StepRecord | undefined, cur: StepRecord, ignored: boolean): CacheMissExplanation {
  if (ignored) return { reason: 'no-cache', message: 'cache disabled for this step (--no-cache or --no-cache-filter)' };
  if (!prev) return { reason: 'new', message: 'no earlier build of this step is recorded' };
  if (prev.key === cur.key) return { reason: 'pruned', message: 'this step was built before, but its cache entry was pruned or found broken' };
  const prevOp = prev.op as Record<string, unknown>;
  const curOp = cur.op as Record<string, unknown>;
  const files = changedFiles(prev.files, cur.files);
  const vars = curOp.kind === 'exec' && prevOp.kind === 'exec' ? changedVars(prevOp.env as string[], curOp.env as string[]) : [];
  const opChanged = canonicalJson({ ...prevOp, env: undefined }) !== canonicalJson({ ...curOp, env: undefined });
  const detail = { ...(files.length ? { files } : {}), ...(vars.length ? { vars } : {}) };
  if (curOp.kind === 'image' && opChanged) {
    return { reason: 'base-image', message: `base image ${String(curOp.ref)} changed: ${String(prevOp.digest)} → ${String(curOp.digest)}` };
  }
  if (files.length) {
    const shown = files.slice(0, SHOWN).map((f) => `${f.path} (${f.old ?? 'new file'} → ${f.new ?? 'removed'})`);
    const more = files.length > SHOWN ? ` and ${files.length - SHOWN} more` : '';
    return { reason: 'file', message: `files changed: ${shown.join(', ')}${more}`, ...detail };
  }
  if (vars.length) {
    const shown = vars.map((v) => `${v.name}=${v.old === undefined ? '(unset)' : JSON.stringify(v.old)} → ${v.new === undefined ? '(unset)' : JSON.stringify(v.new)}`);
    return { reason: 'env', message: `build arg or env changed: ${shown.join(', ')}`, ...detail };
  }
  if (opChanged) return { reason: 'command', message: 'the instruction changed', ...detail };
  if (canonicalJson(prev.inputs) !== canonicalJson(cur.inputs)) {
    return { reason: 'parent', message: 'the step it builds on changed (its cache key differs from the last build)', ...detail };
  }
  return { reason: 'command', message: 'the step definition changed', ...detail };
}

function changedFiles(prev: StepRecord['files'], cur: StepRecord['files']): ChangedFile[] {
  const out: ChangedFile[] = [];
  const n = Math.max(prev?.length ?? 0, cur?.length ?? 0);
  for (let i = 0; i < n; i++) {
    const a = new Map(prev?.[i] ?? []);
    const b = new Map(cur?.[i] ?? []);
    if (!prev?.[i] || !cur?.[i]) continue; // the action itself changed; that is a command change
    for (const [path, d] of b) if (a.get(path) !== d) out.push({ path, ...(a.has(path) ? { old: a.get(path) } : {}), new: d });
    for (const [path, d] of a) if (!b.has(path)) out.push({ path, old: d });
  }
  return out;
}

function changedVars(prev: readonly string[], cur: readonly string[]): ChangedVar[] {
  const toMap = (list: readonly string[]) => new Map(list.map((e) => [envName(e), e.slice(envName(e).length + 1)]));
  const a = toMap(prev);
  const b = toMap(cur);
  const out: ChangedVar[] = [];
  for (const [name, v] of b) if (a.get(name) !== v) out.push({ name, ...(a.has(name) ? { old: a.get(name) } : {}), new: v });
  for (const [name, v] of a) if (!b.has(name)) out.push({ name, old: v });
  return out;
}

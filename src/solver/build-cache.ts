import type { Ctx } from '../ctx.js';
import type { Digest } from '../oci/digest.js';
import { cacheKey } from './cache-key.js';
import type { CacheStore } from './cache-store.js';
import { explainMiss, stepRecord, stepSlot, type CacheMissExplanation, type StepHistory } from './explain.js';
import type { Result, RootfsResult, Vertex } from './graph.js';
import type { SolveCache } from './solve-cache.js';
import type { KeyInput, VertexKey, VertexKeyer } from './vertex-keyer.js';

export interface CachePolicy {
  /** --no-cache: run every step (results are still recorded for the next build). */
  readonly noCache: boolean;
  /** --no-cache-filter: stage names whose steps run regardless of the cache. */
  readonly noCacheStages: readonly string[];
  /** Compute explanations for misses (--explain, and rawjson progress). */
  readonly explain: boolean;
}

/**
 * Where a local miss may still be found: caches imported with `--cache-from`. A hit has its
 * layers already made usable in this root; the BuildCache records it locally.
 */
export interface CacheFallback {
  lookup(key: Digest, ctx: Ctx): Promise<RootfsResult | undefined>;
}

/**
 * The persistent SolveCache: keys from the VertexKeyer, results in the CacheStore, the last
 * build of every step in the StepHistory (so a miss can be explained). One per build.
 */
export class BuildCache implements SolveCache {
  readonly #keyer: VertexKeyer;
  readonly #store: CacheStore;
  readonly #history: StepHistory;
  readonly #policy: CachePolicy;
  readonly #fallback?: CacheFallback;
  readonly #keys = new Map<Digest, VertexKey>();
  /** Every key this build hit or recorded, with its result: what `--cache-to` exports. */
  readonly #used = new Map<Digest, RootfsResult>();
  /** Step-history writes still running: they only serve explanations, so no step waits for them. */
  readonly #remembering = new Set<Promise<void>>();

  constructor(keyer: VertexKeyer, store: CacheStore, history: StepHistory, policy: CachePolicy, fallback?: CacheFallback) {
    this.#keyer = keyer;
    this.#store = store;
    this.#history = history;
    this.#policy = policy;
    this.#fallback = fallback;
  }

  /** The cache entries this build used or made (cache key → result), for exporting. */
  used(): ReadonlyMap<Digest, RootfsResult> {
    return this.#used;
  }

  cacheable(v: Vertex): boolean {
    return v.op.kind !== 'context';
  }

  reproducible(v: Vertex): boolean {
    return v.op.kind === 'image';
  }

  keyedByContent(v: Vertex): ReadonlySet<number> {
    return this.#keyer.keyedByContent(v);
  }

  async key(v: Vertex, inputs: readonly KeyInput[], ctx: Ctx): Promise<Digest | undefined> {
    const k = await this.#keyer.key(v, inputs, ctx);
    if (k) this.#keys.set(v.digest, k);
    return k?.key;
  }

  resultKey(v: Vertex, result: Result): Digest | undefined {
    // Only the http source: its layer (file name, bytes, mode, mtime) is all it adds.
    if (v.op.kind !== 'http' || result.kind !== 'rootfs') return undefined;
    return cacheKey({ op: { kind: 'http', filename: v.op.filename, content: result.layers.map((l) => l.diffId) }, inputs: [] });
  }

  /**
   * True when the cache is off for `v` (--no-cache, --no-cache-filter of its stage): it runs
   * regardless, and sources must not revalidate what they remember either (a forced refresh).
   */
  ignores(v: Vertex): boolean {
    return this.#ignored(v);
  }

  async lookup(v: Vertex, key: Digest, ctx: Ctx): Promise<Result | undefined> {
    if (this.#ignored(v)) return undefined;
    let hit = await this.#store.lookup(key);
    if (!hit && this.#fallback) {
      hit = await this.#fallback.lookup(key, ctx);
      // Recorded here, so the next build on this root needs no import.
      if (hit) await this.#store.record(key, hit);
    }
    if (hit) {
      this.#used.set(key, hit);
      this.#rememberLater(v, key, false);
    }
    return hit;
  }

  async record(v: Vertex, key: Digest, result: Result): Promise<void> {
    if (result.kind !== 'rootfs') return;
    await this.#store.record(key, result);
    this.#used.set(key, result);
    this.#rememberLater(v, key, true);
  }

  /** Waits for the step-history writes this build started (call once the solve is over). */
  async settle(): Promise<void> {
    while (this.#remembering.size) await Promise.all(this.#remembering);
  }

  async explain(v: Vertex, key: Digest | undefined, rebuiltParent: Vertex | undefined): Promise<CacheMissExplanation | undefined> {
    if (!this.#policy.explain) return undefined;
    if (rebuiltParent) return { reason: 'parent', message: `builds on "${rebuiltParent.meta.name}", which was rebuilt` };
    const k = key && this.#keys.get(v.digest);
    if (!k) return { reason: 'parent', message: 'builds on a step that cannot be cached' };
    return explainMiss(await this.#history.last(stepSlot(v)), stepRecord(k), this.#ignored(v));
  }

  #ignored(v: Vertex): boolean {
    if (this.#policy.noCache || v.meta.ignoreCache) return true;
    const stage = stageOf(v);
    return stage !== undefined && this.#policy.noCacheStages.includes(stage);
  }

  /**
   * Keeps the step history pointing at what this step last was (on a hit only when it moved),
   * off the step's path: a cached step costs its record read, not two more file round trips.
   * A failed write only makes a later explanation less precise, so it is not an error.
   */
  #rememberLater(v: Vertex, key: Digest, force: boolean): void {
    const p = this.#remember(v, key, force).catch(() => undefined).finally(() => this.#remembering.delete(p));
    this.#remembering.add(p);
  }

  async #remember(v: Vertex, key: Digest, force: boolean): Promise<void> {
    const k = this.#keys.get(v.digest);
    if (!k) return;
    const slot = stepSlot(v);
    if (!force && (await this.#history.lastKey(slot)) === key) return;
    await this.#history.remember(slot, stepRecord(k));
  }
}

/**
 * The stage a step belongs to, from its progress name `[stage 2/5] …` (`[linux/arm64 stage 2/5]`
 * when several platforms are built); undefined for a lone unnamed stage. Stage names have no '/'.
 */
export function stageOf(v: Vertex): string | undefined {
  return /^\[(?:\S+\/\S+ )?([^\s/]+) +\d+\/\d+\]/.exec(v.meta.name)?.[1];
}

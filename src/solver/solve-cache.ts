import type { Ctx } from '../ctx.js';
import type { Digest } from '../oci/digest.js';
import type { CacheMissExplanation } from '../../schemas/types/progress-event.js';
import type { Result, Vertex } from './graph.js';
import type { KeyInput } from './vertex-keyer.js';

/**
 * What the scheduler asks of a build cache (see build-cache.ts for the persistent one). The
 * scheduler decides the order — key, lookup, explain, run, record — and which misses come
 * first in their chain; the cache decides what keys are and where results live.
 */
export interface SolveCache {
  /** False for vertices that are never cached (e.g. the context source: it is read in place). */
  cacheable(v: Vertex): boolean;
  /**
   * True when running `v` again gives the same result for the same key (an image source pinned
   * by digest): then its rerun does not force the vertices below it to rerun.
   */
  reproducible(v: Vertex): boolean;
  /**
   * The key of `v` from its solved inputs; undefined when `v` can't be keyed (it then always
   * runs, and so does everything below it). May throw a user error (a COPY source missing).
   */
  key(v: Vertex, inputs: readonly KeyInput[], ctx: Ctx): Promise<Digest | undefined>;
  /**
   * Inputs of `v` whose key counts only through the content `v` selects from them (COPY --from):
   * when such an input was rebuilt, `v` may still be found in the cache.
   */
  keyedByContent(v: Vertex): ReadonlySet<number>;
  /**
   * For a vertex that could not be keyed before running (ADD <URL> without --checksum), a key
   * made from what it produced, so the vertices below it can still hit the cache when the
   * content did not change (BuildKit keys the http source by the downloaded digest). Undefined
   * when there is none; the vertex then counts as rebuilt.
   */
  resultKey?(v: Vertex, result: Result): Digest | undefined;
  /** A stored result for `key`, verified usable; undefined on a miss or when caching is off for `v`. */
  lookup(v: Vertex, key: Digest, ctx: Ctx): Promise<Result | undefined>;
  /** Stores the result of a vertex that ran. */
  record(v: Vertex, key: Digest, result: Result, ctx: Ctx): Promise<void>;
  /**
   * Why `v` missed, when explanations are wanted (else undefined). `rebuiltParent` names an
   * input that was itself rebuilt in this build: then `v` is not the first miss of its chain.
   */
  explain(v: Vertex, key: Digest | undefined, rebuiltParent: Vertex | undefined, ctx: Ctx): Promise<CacheMissExplanation | undefined>;
}

import pLimit, { type LimitFunction } from 'p-limit';
import type { Ctx } from '../ctx.js';
import { BuildError, isAbortError } from '../errors.js';
import type { Digest } from '../oci/digest.js';
import type { Op, Result, Vertex } from './graph.js';
import type { SolveCache } from './solve-cache.js';

/**
 * How the solver runs one op kind. Handlers get their inputs' results already solved and must
 * honour `ctx.signal`. They never see other vertices.
 */
export interface OpHandler<O extends Op = Op> {
  run(op: O, inputs: readonly Result[], vertex: Vertex, ctx: Ctx, step?: StepControl): Promise<Result>;
}

/** What a handler may ask of the solve about its own vertex. */
export interface StepControl {
  /**
   * Reports this vertex as failed with `err` before the handler returns (the handler must still
   * throw it): every other vertex is cancelled now, as by any first failure. Returns a ctx that
   * this failure does not cancel (only the solve's caller, e.g. Ctrl-C, does), for work the
   * handler still does with the failed state (the --on-error shell); `undefined` when another
   * vertex failed first or the solve was cancelled.
   */
  failFast(err: unknown): Ctx | undefined;
}

export type OpHandlers = { readonly [K in Op['kind']]: OpHandler<Extract<Op, { kind: K }>> };

export interface SolveOptions {
  /** Concurrent RUN steps (Infinity: no limit). */
  readonly execParallelism: number;
  /** Concurrent other steps (I/O bound: copies, unpacking). */
  readonly ioParallelism: number;
  /** Without a cache every vertex runs. */
  readonly cache?: SolveCache;
  /** Told as a vertex is about to run (it was not found in the cache), before it waits for a pool slot. */
  readonly onRun?: (v: Vertex, ctx: Ctx) => void;
  /** Told once a vertex is solved, found in the cache or run, or has failed. */
  readonly onSettled?: (v: Vertex) => void;
}

/** A solved vertex: its result, its cache key, and whether it was (re)built in this solve rather than found. */
interface Solved {
  readonly result: Result;
  readonly key: Digest | undefined;
  readonly rebuilt: boolean;
  readonly vertex: Vertex;
}

/**
 * Solves the graph below `target` (or below each of several targets, sharing what they share): every vertex once (deduplicated by digest), inputs before
 * the vertex, independent vertices in parallel within the pools' limits. The first failure
 * aborts everything still running (fail-fast) and is what this rejects with; vertices that
 * were stopped by it are reported as cancelled.
 * @returns results by vertex digest (all solved vertices, target included).
 */
export async function solve(target: Vertex | readonly Vertex[], handlers: OpHandlers, opts: SolveOptions, ctx: Ctx): Promise<Map<Digest, Result>> {
  const local = new AbortController();
  const signal = AbortSignal.any([ctx.signal, local.signal]);
  const inner: Ctx = { signal, events: ctx.events };
  const pools: Record<'exec' | 'io', LimitFunction> = { exec: pLimit(opts.execParallelism), io: pLimit(opts.ioParallelism) };
  const cache = opts.cache;
  const running = new Map<Digest, Promise<Solved>>();
  const results = new Map<Digest, Result>();
  let firstError: unknown;
  /** Vertices that reported their failure through StepControl.failFast before throwing it. */
  const failedEarly = new Set<Digest>();

  const fail = (v: Vertex, err: unknown): void => {
    firstError = err instanceof BuildError ? err.withLocation(v.meta.location) : err;
    ctx.events.emit({ type: 'vertex.error', vertex: v.digest, name: v.meta.name, at: Date.now(), message: (err as Error).message });
    local.abort(firstError);
  };

  const visit = (v: Vertex): Promise<Solved> => {
    let p = running.get(v.digest);
    if (!p) {
      p = (async () => {
        try {
          const inputs = await Promise.all(v.inputs.map(visit));
          return await solveVertex(v, inputs);
        } finally {
          opts.onSettled?.(v);
        }
      })();
      running.set(v.digest, p);
    }
    return p;
  };

  /**
   * Key, then lookup, then run. A vertex below one that was rebuilt in this solve skips the
   * lookup: its key can only match a record if the rebuilt input's key did not change, and then
   * the recorded result was made from other content (a --no-cache rerun). An input keyed by the
   * content selected from it (COPY --from) does not count: that key already says what it holds.
   */
  const solveVertex = async (v: Vertex, inputs: Solved[]): Promise<Solved> => {
    const name = v.meta.name;
    const pool = pools[v.op.kind === 'exec' ? 'exec' : 'io'];
    try {
      signal.throwIfAborted();
      const useCache = cache?.cacheable(v) ?? false;
      const byContent = cache?.keyedByContent(v);
      const rebuiltParent = inputs.find((i, n) => i.rebuilt && !byContent?.has(n))?.vertex;
      const key = cache ? await pools.io(() => cache.key(v, inputs.map((i) => ({ key: i.key, result: i.result })), inner)) : undefined;
      if (cache && useCache && key && !rebuiltParent) {
        const hit = await cache.lookup(v, key, inner);
        if (hit) {
          results.set(v.digest, hit);
          ctx.events.emit({ type: 'vertex.cached', vertex: v.digest, name, at: Date.now() });
          return { result: hit, key, rebuilt: false, vertex: v };
        }
      }
      const explain = cache && useCache ? await cache.explain(v, key, rebuiltParent, inner) : undefined;
      opts.onRun?.(v, inner);
      const result = await pool(() => runVertex(v, inputs, explain));
      if (cache && useCache && key) await cache.record(v, key, result, inner);
      const resultKey = cache && useCache && !key ? cache.resultKey?.(v, result) : undefined;
      if (resultKey) {
        // Recorded too, so the result is held like any cached step's (prune keeps its layer).
        await cache!.record(v, resultKey, result, inner);
        return { result, key: resultKey, rebuilt: false, vertex: v };
      }
      return { result, key, rebuilt: useCache && !cache!.reproducible(v), vertex: v };
    } catch (err) {
      if (failedEarly.has(v.digest)) {
        // Reported already (failFast).
      } else if (firstError === undefined && !(isAbortError(err) && signal.aborted)) {
        fail(v, err);
      } else {
        ctx.events.emit({ type: 'vertex.cancelled', vertex: v.digest, name, at: Date.now() });
      }
      throw err;
    }
  };

  const runVertex = async (v: Vertex, inputs: Solved[], explain: SolveExplanation): Promise<Result> => {
    signal.throwIfAborted();
    const name = v.meta.name;
    ctx.events.emit({ type: 'vertex.start', vertex: v.digest, name, at: Date.now(), ...(explain ? { explain } : {}) });
    const handler = handlers[v.op.kind] as OpHandler;
    const step: StepControl = {
      failFast(err) {
        if (firstError !== undefined || signal.aborted) return undefined;
        failedEarly.add(v.digest);
        fail(v, err);
        return ctx;
      },
    };
    const result = await handler.run(
      v.op,
      inputs.map((i) => i.result),
      v,
      inner,
      step,
    );
    results.set(v.digest, result);
    ctx.events.emit({ type: 'vertex.done', vertex: v.digest, name, at: Date.now() });
    return result;
  };

  try {
    await Promise.all((Array.isArray(target) ? target : [target as Vertex]).map(visit));
  } catch (err) {
    // Let every started vertex finish its own clean-up before reporting.
    await Promise.allSettled(running.values());
    if (ctx.signal.aborted) throw ctx.signal.reason ?? err;
    throw firstError ?? err;
  }
  return results;
}

type SolveExplanation = Awaited<ReturnType<SolveCache['explain']>>;

import pLimit, { type LimitFunction } from 'p-limit';
import type { Ctx } from '../ctx.js';
import { BuildError, isAbortError } from '../errors.js';
import type { Digest } from '../oci/digest.js';
import type { Op, Result, Vertex } from './graph.js';

/**
 * How the solver runs one op kind. Handlers get their inputs' results already solved and must
 * honour `ctx.signal`. They never see other vertices.
 */
export interface OpHandler<O extends Op = Op> {
  run(op: O, inputs: readonly Result[], vertex: Vertex, ctx: Ctx): Promise<Result>;
}

export type OpHandlers = { readonly [K in Op['kind']]: OpHandler<Extract<Op, { kind: K }>> };

export interface SolveOptions {
  /** Concurrent RUN steps (CPU bound). Default: number of CPUs. */
  readonly execParallelism: number;
  /** Concurrent other steps (I/O bound: copies, unpacking). */
  readonly ioParallelism: number;
}

/**
 * Solves the graph below `target`: every vertex once (deduplicated by digest), inputs before
 * the vertex, independent vertices in parallel within the pools' limits. The first failure
 * aborts everything still running (fail-fast) and is what this rejects with; vertices that
 * were stopped by it are reported as cancelled.
 * @returns results by vertex digest (all solved vertices, target included).
 */
export async function solve(target: Vertex, handlers: OpHandlers, opts: SolveOptions, ctx: Ctx): Promise<Map<Digest, Result>> {
  const local = new AbortController();
  const signal = AbortSignal.any([ctx.signal, local.signal]);
  const inner: Ctx = { signal, events: ctx.events };
  const pools: Record<'exec' | 'io', LimitFunction> = { exec: pLimit(opts.execParallelism), io: pLimit(opts.ioParallelism) };
  const running = new Map<Digest, Promise<Result>>();
  const results = new Map<Digest, Result>();
  let firstError: unknown;

  const visit = (v: Vertex): Promise<Result> => {
    let p = running.get(v.digest);
    if (!p) {
      p = (async () => {
        const inputs = await Promise.all(v.inputs.map(visit));
        return pools[v.op.kind === 'exec' ? 'exec' : 'io'](() => runVertex(v, inputs));
      })();
      running.set(v.digest, p);
    }
    return p;
  };

  const runVertex = async (v: Vertex, inputs: Result[]): Promise<Result> => {
    signal.throwIfAborted();
    const name = v.meta.name;
    ctx.events.emit({ type: 'vertex.start', vertex: v.digest, name, at: Date.now() });
    try {
      const handler = handlers[v.op.kind] as OpHandler;
      const result = await handler.run(v.op, inputs, v, inner);
      results.set(v.digest, result);
      ctx.events.emit({ type: 'vertex.done', vertex: v.digest, name, at: Date.now() });
      return result;
    } catch (err) {
      if (firstError === undefined && !(isAbortError(err) && signal.aborted)) {
        firstError = err instanceof BuildError ? err.withLocation(v.meta.location) : err;
        ctx.events.emit({ type: 'vertex.error', vertex: v.digest, name, at: Date.now(), message: (err as Error).message });
        local.abort(firstError);
      } else {
        ctx.events.emit({ type: 'vertex.cancelled', vertex: v.digest, name, at: Date.now() });
      }
      throw err;
    }
  };

  try {
    await visit(target);
  } catch (err) {
    // Let every started vertex finish its own clean-up before reporting.
    await Promise.allSettled(running.values());
    if (ctx.signal.aborted) throw ctx.signal.reason ?? err;
    throw firstError ?? err;
  }
  return results;
}

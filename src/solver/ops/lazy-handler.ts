import type { Op } from '../graph.js';
import type { OpHandler } from '../scheduler.js';

/**
 * An op handler whose module is imported on its first run. A fully cached build runs no RUN,
 * copy, merge or download, so it never loads the runtime, the copier or the http client: on a
 * no-op rebuild that module loading was most of the work.
 */
export function lazyHandler<O extends Op>(load: () => Promise<OpHandler<O>>): OpHandler<O> {
  let handler: Promise<OpHandler<O>> | undefined;
  return {
    async run(op, inputs, vertex, ctx, step) {
      return (await (handler ??= load())).run(op, inputs, vertex, ctx, step);
    },
  };
}

import type { ContextOp } from '../graph.js';
import type { OpHandler } from '../scheduler.js';

/** The build context is read in place: COPY selects from it directly, nothing is copied ahead. */
export const contextHandler: OpHandler<ContextOp> = {
  async run(op) {
    return { kind: 'dir', path: op.dir, excludes: op.excludes };
  },
};

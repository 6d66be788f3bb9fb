import { BuildError } from '../../errors.js';
import type { MergeOp, RootfsResult } from '../graph.js';
import type { OpHandler } from '../scheduler.js';

/** Stacks the inputs' layers (see MergeOp); no filesystem work: layers are shared by reference. */
export const mergeHandler: OpHandler<MergeOp> = {
  async run(_op, inputs) {
    const layers: RootfsResult['layers'][number][] = [];
    for (const r of inputs) {
      if (r.kind !== 'rootfs') throw new BuildError('INTERNAL', 'merge expects root filesystems as inputs');
      layers.push(...r.layers);
    }
    const result: RootfsResult = { kind: 'rootfs', layers };
    return result;
  },
};

import type { Digest } from '../oci/digest.js';
import type { Vertex } from './graph.js';

/**
 * The RUN steps on the sandbox network below `targets` (`runs`), and the vertices such a RUN is,
 * or takes as input, directly or not (`inputs`): when one of those runs (a cache miss), such a
 * RUN most likely runs after it, since its input changed, so its network can be made meanwhile
 * (CommandRunner.prepare); once every one of `runs` is done, no network is needed any more.
 */
export function sandboxNetworkUse(targets: readonly Vertex[]): { runs: Set<Digest>; inputs: Set<Digest> } {
  const runs = new Set<Digest>();
  const inputs = new Set<Digest>();
  const seen = new Set<Digest>();
  const markInputs = (v: Vertex): void => {
    if (inputs.has(v.digest)) return;
    inputs.add(v.digest);
    for (const i of v.inputs) markInputs(i);
  };
  const visit = (v: Vertex): void => {
    if (seen.has(v.digest)) return;
    seen.add(v.digest);
    if (v.op.kind === 'exec' && v.op.network === 'sandbox') {
      runs.add(v.digest);
      markInputs(v);
    }
    for (const i of v.inputs) visit(i);
  };
  for (const t of targets) visit(t);
  return { runs, inputs };
}

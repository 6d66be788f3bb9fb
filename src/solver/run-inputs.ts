import type { Digest } from '../oci/digest.js';
import type { Vertex } from './graph.js';

/**
 * The vertices below `targets` that a RUN on the sandbox network is, or takes as input, directly
 * or not: when one of them runs (a cache miss), such a RUN most likely runs after it, since its
 * input changed, so its network can be made meanwhile (CommandRunner.prepare).
 */
export function sandboxRunInputs(targets: readonly Vertex[]): Set<Digest> {
  const marked = new Set<Digest>();
  const seen = new Set<Digest>();
  const markInputs = (v: Vertex): void => {
    if (marked.has(v.digest)) return;
    marked.add(v.digest);
    for (const i of v.inputs) markInputs(i);
  };
  const visit = (v: Vertex): void => {
    if (seen.has(v.digest)) return;
    seen.add(v.digest);
    if (v.op.kind === 'exec' && v.op.network === 'sandbox') markInputs(v);
    for (const i of v.inputs) visit(i);
  };
  for (const t of targets) visit(t);
  return marked;
}

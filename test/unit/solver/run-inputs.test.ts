import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeVertex, type Op, type Vertex } from '../../../src/solver/graph.js';
import { sandboxNetworkUse } from '../../../src/solver/run-inputs.js';

const v = (name: string, op: Partial<Op> & { kind: Op['kind'] }, inputs: Vertex[] = []): Vertex => makeVertex({ ...op, name } as unknown as Op, inputs, { name });

test('a RUN on the sandbox network marks itself and everything below it as inputs, and itself as a run; other steps and other RUNs do not', () => {
  const base = v('base', { kind: 'image' });
  const ctxFiles = v('context', { kind: 'context' });
  const copy = v('copy', { kind: 'file' }, [base, ctxFiles]);
  const run = v('run', { kind: 'exec', network: 'sandbox' } as Partial<Op> & { kind: 'exec' }, [copy]);
  const after = v('after', { kind: 'file' }, [run]);
  const other = v('other-base', { kind: 'image' });
  const offline = v('offline', { kind: 'exec', network: 'none' } as Partial<Op> & { kind: 'exec' }, [other]);
  const final = v('final', { kind: 'merge' }, [after, offline]);
  const { inputs, runs } = sandboxNetworkUse([final]);
  const all = [base, ctxFiles, copy, run, after, other, offline, final];
  assert.equal(all.filter((x) => inputs.has(x.digest)).map((x) => x.meta.name), ['base', 'context', 'copy', 'run']);
  assert.equal(all.filter((x) => runs.has(x.digest)).map((x) => x.meta.name), ['run']);
});

test.run();

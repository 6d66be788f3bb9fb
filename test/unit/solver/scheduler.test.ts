import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeVertex, type ExecOp, type Result, type Vertex } from '../../../src/solver/graph.js';
import { solve, type OpHandlers } from '../../../src/solver/scheduler.js';
import { RecordingSink } from '../../../src/events.js';
import { sha256 } from '../../../src/oci/digest.js';
import type { Ctx } from '../../../src/ctx.js';
import type { SolveCache } from '../../../src/solver/solve-cache.js';
import { BuildError } from '../../../src/errors.js';
import type { Digest } from '../../../src/oci/digest.js';

const test = suite('solver/scheduler');

/** Fake handlers: exec ops "run" by sleeping `args[1]` ms, failing when args[0] is 'fail'. */
function fakeHandlers() {
  const calls: string[] = [];
  let active = 0;
  let maxActive = 0;
  const rootfs = (name: string): Result => ({ kind: 'rootfs', layers: [{ diffId: sha256(name) }] });
  const exec = async (op: ExecOp, _inputs: readonly Result[], v: Vertex, ctx: Ctx): Promise<Result> => {
    calls.push(op.args.join(' '));
    active++;
    maxActive = Math.max(maxActive, active);
    try {
      await sleep(Number(op.args[1] ?? 0), undefined, { signal: ctx.signal });
      if (op.args[0] === 'fail') throw new Error(`failed: ${v.meta.name}`);
      return rootfs(op.args.join(' '));
    } finally {
      active--;
    }
  };
  const handlers: OpHandlers = {
    exec: { run: exec },
    image: { run: async (op) => (calls.push(`image ${op.ref}`), rootfs(op.ref)) },
    context: { run: async (op) => (calls.push('context'), { kind: 'dir', path: op.dir, excludes: [] }) },
    file: { run: async () => (calls.push('file'), rootfs('file')) },
    merge: { run: async () => (calls.push('merge'), rootfs('merge')) },
    http: { run: async () => (calls.push('http'), rootfs('http')) },
  };
  return { handlers, calls, maxActive: () => maxActive };
}

const image = makeVertex({ kind: 'image', ref: 'docker.io/library/base:latest', platform: { os: 'linux', architecture: 'amd64' } }, [], { name: 'FROM base' });
const run = (args: string[], inputs: Vertex[]) =>
  makeVertex({ kind: 'exec', args, env: [], cwd: '/', user: '', network: 'host' }, inputs, { name: `RUN ${args.join(' ')}` });
const ctx = (signal = new AbortController().signal) => ({ signal, events: new RecordingSink() });
const opts = { execParallelism: 4, ioParallelism: 8 };

test('identical vertices run once', async () => {
  const f = fakeHandlers();
  const a1 = run(['a', '1'], [image]);
  const a2 = run(['a', '1'], [image]); // same op and inputs: same digest
  assert.is(a1.digest, a2.digest);
  const top = makeVertex({ kind: 'file', base: 'input', actions: [] }, [a1, a2], { name: 'COPY' });
  const results = await solve(top, f.handlers, opts, ctx());
  assert.equal(f.calls.filter((c) => c === 'a 1').length, 1);
  assert.equal(f.calls.filter((c) => c.startsWith('image')).length, 1);
  assert.ok(results.has(top.digest));
});

test('independent vertices run in parallel, within the limit', async () => {
  const f = fakeHandlers();
  const branches = ['a', 'b', 'c', 'd', 'e', 'f'].map((n) => run([n, '40'], [image]));
  const top = makeVertex({ kind: 'file', base: 'input', actions: [] }, branches, { name: 'join' });
  await solve(top, f.handlers, { execParallelism: 3, ioParallelism: 8 }, ctx());
  assert.is(f.maxActive(), 3);
});

test('first failure cancels the rest and is the error reported', async () => {
  const f = fakeHandlers();
  const slow = run(['slow', '5000'], [image]);
  const bad = run(['fail', '10'], [image]);
  const top = makeVertex({ kind: 'file', base: 'input', actions: [] }, [slow, bad], { name: 'join' });
  const c = ctx();
  const started = Date.now();
  try {
    await solve(top, f.handlers, opts, c);
    assert.unreachable('should fail');
  } catch (e) {
    assert.match((e as Error).message, 'failed: RUN fail 10');
  }
  assert.ok(Date.now() - started < 2000, 'slow sibling was aborted, not awaited to completion');
  const types = c.events.events.map((e) => `${e.type} ${'name' in e ? e.name : ''}`);
  assert.ok(types.includes('vertex.error RUN fail 10'));
  assert.ok(types.includes('vertex.cancelled RUN slow 5000'));
  assert.not.ok(f.calls.includes('file'), 'dependent never ran');
});

test('external abort rejects with the abort reason', async () => {
  const f = fakeHandlers();
  const ac = new AbortController();
  const v = run(['long', '5000'], [image]);
  setTimeout(() => ac.abort(new Error('interrupted')), 30);
  try {
    await solve(v, f.handlers, opts, ctx(ac.signal));
    assert.unreachable();
  } catch (e) {
    assert.is((e as Error).message, 'interrupted');
  }
});

/** An in-memory SolveCache with call counters; keys as the real one: op digest + input keys. */
function fakeCache(opts: { ignore?: (v: Vertex) => boolean; byContent?: (v: Vertex) => ReadonlySet<number> } = {}) {
  const records = new Map<Digest, Result>();
  const explained: { name: string; reason: string }[] = [];
  let lookups = 0;
  const cache: SolveCache = {
    cacheable: (v) => v.op.kind !== 'context',
    reproducible: (v) => v.op.kind === 'image',
    keyedByContent: (v) => opts.byContent?.(v) ?? new Set(),
    // Inputs keyed by content stand for what the vertex selects from them: here, their results.
    key: async (v, inputs) => {
      const byContent = opts.byContent?.(v) ?? new Set();
      const parts = inputs.map((i, n) => (byContent.has(n) ? JSON.stringify(i.result) : i.key));
      return parts.some((k) => k === undefined) ? undefined : sha256(v.digest + parts.join());
    },
    lookup: async (v, key) => {
      lookups++;
      return opts.ignore?.(v) ? undefined : records.get(key);
    },
    record: async (_v, key, result) => void records.set(key, result),
    explain: async (v, _key, parent) => {
      const x = { reason: parent ? 'parent' : 'new', message: parent ? parent.meta.name : 'first' } as const;
      explained.push({ name: v.meta.name, reason: x.reason });
      return x;
    },
  };
  return { cache, records, explained, lookups: () => lookups };
}

test('with a cache: second solve runs nothing and reports every vertex cached', async () => {
  const f = fakeHandlers();
  const c = fakeCache();
  const a = run(['a', '1'], [image]);
  const b = run(['b', '1'], [a]);
  await solve(b, f.handlers, { ...opts, cache: c.cache }, ctx());
  assert.equal(f.calls, ['image docker.io/library/base:latest', 'a 1', 'b 1']);
  f.calls.length = 0;
  const second = ctx();
  const results = await solve(b, f.handlers, { ...opts, cache: c.cache }, second);
  assert.equal(f.calls, [], 'no handler ran');
  assert.equal(second.events.events.map((e) => e.type), ['vertex.cached', 'vertex.cached', 'vertex.cached']);
  assert.equal(results.get(b.digest), { kind: 'rootfs', layers: [{ diffId: sha256('b 1') }] });
});

test('with a cache: only the first miss of a chain is explained on its own; below it, "parent"', async () => {
  const f = fakeHandlers();
  const c = fakeCache();
  const a = run(['a', '1'], [image]);
  await solve(run(['b', '1'], [a]), f.handlers, { ...opts, cache: c.cache }, ctx());
  c.explained.length = 0;
  const a2 = run(['a', '2'], [image]);
  const events = ctx();
  await solve(run(['b', '1'], [a2]), f.handlers, { ...opts, cache: c.cache }, events);
  assert.equal(c.explained, [
    { name: 'RUN a 2', reason: 'new' },
    { name: 'RUN b 1', reason: 'parent' },
  ]);
  const start = events.events.events.find((e) => e.type === 'vertex.start' && e.name === 'RUN a 2');
  assert.equal(start && 'explain' in start ? start.explain : undefined, { reason: 'new', message: 'first' }, 'explanation rides on vertex.start');
});

test('with a cache: a vertex below one that re-ran (no-cache) skips the lookup and re-runs too', async () => {
  const f = fakeHandlers();
  const plain = fakeCache();
  const a = run(['a', '1'], [image]);
  const b = run(['b', '1'], [a]);
  await solve(b, f.handlers, { ...opts, cache: plain.cache }, ctx());
  const ignoring = fakeCache({ ignore: (v) => v === a });
  for (const [k, r] of plain.records) ignoring.records.set(k, r);
  f.calls.length = 0;
  await solve(b, f.handlers, { ...opts, cache: ignoring.cache }, ctx());
  assert.equal(f.calls, ['a 1', 'b 1'], 'image hit; a ignored the cache; b re-ran because a did');
  assert.is(ignoring.lookups(), 2, 'image and a were looked up, b was not');
});

test('with a cache: below a re-run input keyed by content (COPY --from), the lookup still happens', async () => {
  const f = fakeHandlers();
  const a = run(['a', '1'], [image]);
  const copy = run(['copy', '1'], [image, a]);
  const byContent = (v: Vertex) => new Set(v === copy ? [1] : []);
  const plain = fakeCache({ byContent });
  await solve(copy, f.handlers, { ...opts, cache: plain.cache }, ctx());
  const ignoring = fakeCache({ ignore: (v) => v === a, byContent });
  for (const [k, r] of plain.records) ignoring.records.set(k, r);
  f.calls.length = 0;
  await solve(copy, f.handlers, { ...opts, cache: ignoring.cache }, ctx());
  assert.equal(f.calls, ['a 1'], 'a re-ran with the same result, so the copy from it was found');
  assert.is(ignoring.lookups(), 3, 'image, a and the copy were looked up');
});

test('with a cache: a key error fails the vertex with its location, like a run error', async () => {
  const f = fakeHandlers();
  const c = fakeCache();
  const broken: SolveCache = { ...c.cache, key: async () => Promise.reject(new BuildError('COPY_SOURCE_MISSING', 'not found')) };
  const v = makeVertex({ kind: 'exec', args: ['x'], env: [], cwd: '/', user: '', network: 'host' }, [], { name: 'RUN x', location: { file: 'Dockerfile', line: 4 } });
  const events = ctx();
  try {
    await solve(v, f.handlers, { ...opts, cache: broken }, events);
    assert.unreachable();
  } catch (e) {
    assert.instance(e, BuildError);
    assert.is((e as BuildError).location?.line, 4);
  }
  assert.equal(f.calls, []);
  assert.ok(events.events.events.some((e) => e.type === 'vertex.error'));
});

test.run();

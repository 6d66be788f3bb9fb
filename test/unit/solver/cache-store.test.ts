import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CacheStore } from '../../../src/solver/cache-store.js';
import { explainMiss, stepSlot, StepHistory, type StepRecord } from '../../../src/solver/explain.js';
import { makeVertex } from '../../../src/solver/graph.js';
import { digestHex, sha256, type Digest } from '../../../src/oci/digest.js';

const test = suite('solver/cache-store');
let dir = '';
test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tsbuild-cachestore-'));
});
test.after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const L1 = sha256('layer1');
const L2 = sha256('layer2');

test('a record survives a new store instance (another process) and is a hit only while its layers exist', async () => {
  const present = new Set<Digest>([L1, L2]);
  const d = join(dir, 'records1');
  const key = sha256('k');
  await new CacheStore(d, async (l) => present.has(l)).record(key, { kind: 'rootfs', layers: [{ diffId: L1 }, { diffId: L2 }] });
  const other = new CacheStore(d, async (l) => present.has(l));
  assert.equal(await other.lookup(key), { kind: 'rootfs', layers: [{ diffId: L1 }, { diffId: L2 }] });
  assert.is(await other.lookup(sha256('unknown')), undefined);
  present.delete(L2);
  assert.is(await other.lookup(key), undefined, 'missing layer: a miss');
  assert.equal(await readdir(d), [], 'and the broken record is removed');
});

test('damaged or mismatched record files are misses and removed; no temp files remain', async () => {
  const d = join(dir, 'records2');
  const store = new CacheStore(d, async () => true);
  const key = sha256('k2');
  await store.record(key, { kind: 'rootfs', layers: [] });
  await writeFile(join(d, `${digestHex(key)}.json`), '{"key":"sha256:');
  assert.is(await store.lookup(key), undefined);
  const other = sha256('k3');
  await store.record(other, { kind: 'rootfs', layers: [] });
  await writeFile(join(d, `${digestHex(key)}.json`), await import('node:fs/promises').then((f) => f.readFile(join(d, `${digestHex(other)}.json`))));
  assert.is(await store.lookup(key), undefined, 'a record under the wrong key is not trusted');
  assert.equal((await readdir(d)).sort(), [`${digestHex(other)}.json`]);
  assert.is((await store.list()).length, 1);
});

const rec = (over: Partial<StepRecord>): StepRecord => ({ key: sha256(JSON.stringify(over)), op: { kind: 'exec', args: ['make'], env: ['A=1'] }, inputs: [sha256('p')], ...over });

test('explainMiss: each reason', () => {
  const prev = rec({});
  assert.is(explainMiss(undefined, prev, false).reason, 'new');
  assert.is(explainMiss(prev, prev, true).reason, 'no-cache');
  assert.is(explainMiss(prev, { ...prev }, false).reason, 'pruned');
  const env = explainMiss(prev, rec({ op: { kind: 'exec', args: ['make'], env: ['A=2', 'B=x'] } }), false);
  assert.is(env.reason, 'env');
  assert.equal(env.vars, [{ name: 'A', old: '1', new: '2' }, { name: 'B', new: 'x' }]);
  assert.is(explainMiss(prev, rec({ op: { kind: 'exec', args: ['make', 'all'], env: ['A=1'] } }), false).reason, 'command');
  assert.is(explainMiss(prev, rec({ inputs: [sha256('q')] }), false).reason, 'parent');
  const f1 = sha256('f1');
  const f2 = sha256('f2');
  const fileOp = { kind: 'file', actions: [] };
  const files = explainMiss(rec({ op: fileOp, files: [[['a', f1], ['gone', f1]]] }), rec({ op: fileOp, files: [[['a', f2], ['new', f2]]] }), false);
  assert.is(files.reason, 'file');
  assert.equal(files.files, [{ path: 'a', old: f1, new: f2 }, { path: 'new', new: f2 }, { path: 'gone', old: f1 }]);
  assert.match(files.message, `a (${f1} → ${f2})`);
  const img = (d: string) => rec({ op: { kind: 'image', ref: 'busybox', digest: d }, inputs: [] });
  assert.is(explainMiss(img('sha256:1'), img('sha256:2'), false).reason, 'base-image');
});

test('step slots: same step of the same Dockerfile across edits; other steps, stages and files differ', () => {
  const v = (name: string, file = '/c/Dockerfile', args = ['a']) =>
    makeVertex({ kind: 'exec', args, env: [], cwd: '/', user: '', network: 'host' }, [], { name, location: { file, line: 1 } });
  assert.is(stepSlot(v('[build 2/5] RUN a')), stepSlot(v('[build 2/6] RUN b', '/c/Dockerfile', ['b'])));
  const slots = new Set([stepSlot(v('[build 2/5] RUN a')), stepSlot(v('[build 3/5] RUN a')), stepSlot(v('[app 2/5] RUN a')), stepSlot(v('[build 2/5] RUN a', '/d/Dockerfile'))]);
  assert.is(slots.size, 4);
});

test('step history round trip', async () => {
  const h = new StepHistory(join(dir, 'steps'));
  const r = rec({ files: [null, [['x', sha256('x')]]] });
  await h.remember('slot', r);
  assert.is(await h.lastKey('slot'), r.key);
  assert.equal(await h.last('slot'), JSON.parse(JSON.stringify(r)));
  assert.is(await h.last('none'), undefined);
});

test.run();

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { chmod, chown, mkdtemp, readdir, readFile, rm, symlink, utimes, writeFile, mkdir, rename } from 'node:fs/promises';
import { statSync, type Stats } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeVertex, type ExecOp, type Result, type Vertex } from '../../../src/solver/graph.js';
import { nullSink } from '../../../src/events.js';
import { SelectionMemo, sweepSelectionMemo } from '../../../src/solver/selection-memo.js';
import { VertexKeyer } from '../../../src/solver/vertex-keyer.js';
import { StatCache } from '../../../src/solver/stat-cache.js';
import { checksumSelection } from '../../../src/solver/context-checksum.js';
import { sha256, type Digest } from '../../../src/oci/digest.js';
import { lsetxattr } from '../../../src/oci/native-fs.js';

const test = suite('solver/cache-key');
const signal = new AbortController().signal;
const ctx = { signal, events: nullSink };
const platform = { os: 'linux', architecture: 'amd64' };
let dir = '';

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tsbuild-cachekey-'));
});
test.after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const image = makeVertex({ kind: 'image', ref: 'docker.io/library/busybox:latest', digest: sha256('img'), platform }, [], { name: 'FROM busybox' });
const execOp = (over: Partial<ExecOp> = {}): ExecOp => ({ kind: 'exec', args: ['/bin/sh', '-c', 'make'], env: ['PATH=/bin'], cwd: '/', user: '', network: 'host', ...over });

/** Keys a small chain: image → key of v (inputs keyed recursively). */
async function keyOf(v: Vertex, keyer = new VertexKeyer(StatCache.memory()), results = new Map<Vertex, Result>()): Promise<Digest | undefined> {
  const inputs = [];
  for (const i of v.inputs) inputs.push({ key: await keyOf(i, keyer, results), result: results.get(i) });
  return (await keyer.key(v, inputs, ctx))?.key;
}

async function contextWith(files: Record<string, string>): Promise<string> {
  const c = await mkdtemp(join(dir, 'ctx-'));
  for (const [p, content] of Object.entries(files)) {
    await mkdir(join(c, p, '..'), { recursive: true });
    await writeFile(join(c, p), content);
  }
  return c;
}

function copyFrom(ctxDir: string, srcPaths: string[], dest = '/app/', meta = { name: 'COPY' }, excludes: string[] = []): Vertex {
  const context = makeVertex({ kind: 'context', name: 'context', dir: ctxDir, excludes }, [], { name: 'context' });
  return makeVertex({ kind: 'file', base: 'input', actions: [{ type: 'copy', source: 1, srcPaths, dest, allowWildcard: true, unpackArchives: false }] }, [image, context], meta);
}

test('exec key: names, positions and proxy variables are not part of it', async () => {
  const a = makeVertex(execOp(), [image], { name: '[1/2] RUN make', location: { file: '/a/Dockerfile', line: 3 } });
  const b = makeVertex(execOp({ env: ['PATH=/bin', 'HTTP_PROXY=http://p:3128', 'no_proxy=x'] }), [image], { name: '[7/9] RUN make', location: { file: '/b/Dockerfile', line: 40 } });
  assert.is(await keyOf(a), await keyOf(b));
});

test('exec key: command, env, user, cwd, network and the parent change it', async () => {
  const base = await keyOf(makeVertex(execOp(), [image], { name: 'x' }));
  const variants: Partial<ExecOp>[] = [{ args: ['/bin/sh', '-c', 'make all'] }, { env: ['PATH=/bin', 'V=2'] }, { user: 'nobody' }, { cwd: '/src' }, { network: 'none' }];
  const keys = new Set([base]);
  for (const v of variants) keys.add(await keyOf(makeVertex(execOp(v), [image], { name: 'x' })));
  const otherImage = makeVertex({ kind: 'image', ref: 'docker.io/library/busybox:latest', digest: sha256('img2'), platform }, [], { name: 'FROM busybox' });
  keys.add(await keyOf(makeVertex(execOp(), [otherImage], { name: 'x' })));
  assert.is(keys.size, variants.length + 2, 'every variant has its own key');
});

test('an image not pinned by digest has no key, nor has anything built on it', async () => {
  const unpinned = makeVertex({ kind: 'image', ref: 'docker.io/library/busybox:latest', platform }, [], { name: 'FROM busybox' });
  assert.is(await keyOf(unpinned), undefined);
  assert.is(await keyOf(makeVertex(execOp(), [unpinned], { name: 'x' })), undefined);
});

test('COPY key: mtime, atime, the context location and the step name do not change it', async () => {
  const c1 = await contextWith({ 'a.txt': 'hello', 'sub/b.txt': 'world' });
  const c2 = await contextWith({ 'a.txt': 'hello', 'sub/b.txt': 'world' });
  const k1 = await keyOf(copyFrom(c1, ['.']));
  await utimes(join(c2, 'a.txt'), new Date(1000), new Date(2000));
  await utimes(join(c2, 'sub'), new Date(1000), new Date(2000));
  assert.is(await keyOf(copyFrom(c2, ['.'], '/app/', { name: 'other name' })), k1);
});

test('COPY key: content, mode, owner, xattrs, symlink target, added/removed/renamed files change it', async () => {
  const files = { 'a.txt': 'hello', 'sub/b.txt': 'world' };
  const base = await keyOf(copyFrom(await contextWith(files), ['.']));
  const mutations: [string, (c: string) => Promise<void>][] = [
    ['content', (c) => writeFile(join(c, 'a.txt'), 'hellO')],
    ['mode', (c) => chmod(join(c, 'a.txt'), 0o755)],
    ['dir mode', (c) => chmod(join(c, 'sub'), 0o700)],
    ['owner', (c) => chown(join(c, 'a.txt'), 1000, 1000)],
    ['xattr', async (c) => lsetxattr(join(c, 'a.txt'), 'user.test', Buffer.from('1'))],
    ['added', (c) => writeFile(join(c, 'sub/new'), '')],
    ['removed', (c) => rm(join(c, 'sub/b.txt'))],
    ['renamed', (c) => rename(join(c, 'sub/b.txt'), join(c, 'sub/c.txt'))],
    ['symlink', (c) => symlink('a.txt', join(c, 'link'))],
  ];
  const seen = new Map<string | undefined, string>([[base, 'base']]);
  for (const [what, mutate] of mutations) {
    const c = await contextWith(files);
    await mutate(c);
    const k = await keyOf(copyFrom(c, ['.']));
    assert.not.ok(seen.has(k), `${what} changes the key (same as ${seen.get(k)})`);
    seen.set(k, what);
  }
  const l1 = await contextWith(files);
  await symlink('a.txt', join(l1, 'link'));
  const l2 = await contextWith(files);
  await symlink('sub/b.txt', join(l2, 'link'));
  assert.is.not(await keyOf(copyFrom(l1, ['.'])), await keyOf(copyFrom(l2, ['.'])), 'symlink target');
});

test('COPY key covers exactly the selected files: others and ignored ones do not count', async () => {
  const c = await contextWith({ 'a.txt': 'A', 'b.txt': 'B', 'logs/x.log': '1' });
  const onlyA = await keyOf(copyFrom(c, ['a.txt']));
  const all = await keyOf(copyFrom(c, ['.'], '/app/', { name: 'COPY' }, ['logs']));
  await writeFile(join(c, 'b.txt'), 'B2');
  await writeFile(join(c, 'logs/x.log'), '2');
  assert.is(await keyOf(copyFrom(c, ['a.txt'])), onlyA, 'b.txt is not selected');
  assert.is.not(await keyOf(copyFrom(c, ['.'], '/app/', { name: 'COPY' }, ['logs'])), all, 'b.txt is selected by "."');
  const withB = await keyOf(copyFrom(c, ['.'], '/app/', { name: 'COPY' }, ['logs']));
  await writeFile(join(c, 'logs/x.log'), '3');
  assert.is(await keyOf(copyFrom(c, ['.'], '/app/', { name: 'COPY' }, ['logs'])), withB, 'ignored file does not count');
});

/**
 * Stage outputs for COPY --from: each "layer" is a directory standing for a solved rootfs (the
 * keyer only needs it readable; real builds mount it, see test/integration/copy-from-cache.test.ts).
 */
function stages() {
  const roots = new Map<string, string>();
  let opens = 0;
  const keyer = (memo?: SelectionMemo) =>
    new VertexKeyer(StatCache.memory(), {
      open: async (layers) => {
        opens++;
        return { root: roots.get(layers.join())!, release: async () => undefined };
      },
      memo,
    });
  const results = new Map<Vertex, Result>();
  /** A stage whose RUN is `cmd` and whose output is the tree `files`. */
  const stage = async (cmd: string, files: Record<string, string>) => {
    const v = makeVertex(execOp({ args: ['/bin/sh', '-c', cmd] }), [image], { name: `RUN ${cmd}` });
    const diffId = sha256(`${cmd} ${JSON.stringify(files)}`);
    roots.set(diffId, await contextWith(files));
    results.set(v, { kind: 'rootfs', layers: [{ diffId }] });
    return v;
  };
  const copyFromStage = (src: Vertex, srcPaths = ['/out']) =>
    makeVertex({ kind: 'file', base: 'input', actions: [{ type: 'copy', source: 1, srcPaths, dest: '/app/', allowWildcard: true, unpackArchives: false }] }, [image, src], { name: 'COPY --from' });
  return { keyer, stage, copyFromStage, results, opens: () => opens };
}

test('COPY --from key: the copied content counts, not how the source stage was made', async () => {
  const s = stages();
  const k = (v: Vertex, keyer = s.keyer()) => keyOf(s.copyFromStage(v), keyer, s.results);
  const a = await s.stage('make v1', { 'out/bin': 'BIN', 'src/main.c': 'v1' });
  const b = await s.stage('make v2', { 'out/bin': 'BIN', 'src/main.c': 'v2' });
  const c = await s.stage('make v3', { 'out/bin': 'BIN2', 'src/main.c': 'v1' });
  assert.ok(await k(a));
  assert.is(await k(b), await k(a), 'other command, other files outside /out: same key');
  assert.is.not(await k(c), await k(a), 'other /out content: other key');
  const keyer = s.keyer();
  const copy = s.copyFromStage(a);
  const input = { key: await keyOf(a, keyer, s.results), result: s.results.get(a) };
  assert.equal([...keyer.keyedByContent(copy)], [1]);
  assert.is((await keyer.key(copy, [{ key: await keyOf(image) }, { ...input, key: undefined }], ctx))?.key, await k(a), 'a source without a key of its own still keys by content');
  const selfCopy = makeVertex({ kind: 'file', base: 'input', actions: [{ type: 'copy', source: 0, srcPaths: ['/x'], dest: '/y', allowWildcard: false, unpackArchives: false }] }, [a], { name: 'COPY' });
  assert.equal([...keyer.keyedByContent(selfCopy)], [], 'the rootfs written to is never keyed by content');
});

test('RUN --mount=from key: the mounted content counts, not the source stage key', async () => {
  const s = stages();
  const mounted = (src: Vertex) => makeVertex(execOp({ mounts: [{ type: 'bind', target: '/m', input: 1, source: '/out', readwrite: false }] }), [image, src], { name: 'RUN' });
  const a = await s.stage('make v1', { 'out/bin': 'BIN', 'src/x': '1' });
  const b = await s.stage('make v2', { 'out/bin': 'BIN', 'src/x': '2' });
  const c = await s.stage('make v3', { 'out/bin': 'BIN3' });
  const ka = await keyOf(mounted(a), s.keyer(), s.results);
  assert.is(await keyOf(mounted(b), s.keyer(), s.results), ka);
  assert.is.not(await keyOf(mounted(c), s.keyer(), s.results), ka);
});

test('COPY --from key: checksums are remembered per layer chain, so a later build does not open the source', async () => {
  const s = stages();
  const memoDir = join(dir, 'memo');
  const a = await s.stage('make', { 'out/bin': 'BIN' });
  const first = await keyOf(s.copyFromStage(a), s.keyer(new SelectionMemo(memoDir)), s.results);
  assert.is(s.opens(), 1);
  assert.is(await keyOf(s.copyFromStage(a), s.keyer(new SelectionMemo(memoDir)), s.results), first);
  assert.is(s.opens(), 1, 'remembered: not opened again');
  assert.is.not(await keyOf(s.copyFromStage(a, ['/out/bin']), s.keyer(new SelectionMemo(memoDir)), s.results), first, 'another selection is its own entry');
  for (const name of await readdir(memoDir)) await writeFile(join(memoDir, name), '{"version":1,"digest":"sha256:00"}');
  assert.is(await keyOf(s.copyFromStage(a), s.keyer(new SelectionMemo(memoDir)), s.results), first, 'a damaged entry is ignored');
  assert.is(s.opens(), 3);
  assert.is(await sweepSelectionMemo(memoDir, () => false), 2, 'entries whose layers are gone are swept');
  assert.equal(await readdir(memoDir), []);
});

test('stat cache: an unchanged file is not read again (its remembered checksum is used)', async () => {
  const c = await contextWith({ 'a.txt': 'hello' });
  const p = join(c, 'a.txt');
  await utimes(p, new Date(1_000_000), new Date(1_000_000));
  const stats = StatCache.memory();
  const real = await checksumSelection({ root: c, kind: 'context' }, { srcPaths: ['a.txt'], allowWildcard: false }, stats, signal);
  // Plant a fake checksum for the same stat: if the file were read, the real one would show.
  const fake = sha256('planted');
  stats.set(p, statSync(p), fake, Date.now() + 10_000);
  const again = await checksumSelection({ root: c, kind: 'context' }, { srcPaths: ['a.txt'], allowWildcard: false }, stats, signal);
  assert.is(new Map(again.files).get('a.txt'), fake);
  assert.is.not(again.digest, real.digest);
  // Any change to the inode's metadata moves ctime and invalidates the entry.
  await chmod(p, 0o600);
  const after = await checksumSelection({ root: c, kind: 'context' }, { srcPaths: ['a.txt'], allowWildcard: false }, stats, signal);
  assert.is.not(new Map(after.files).get('a.txt'), fake);
});

test('stat cache: persisted, reloaded, and fresh files (racy mtime) are not remembered', async () => {
  const c = await contextWith({ 'old.txt': 'o', 'fresh.txt': 'f' });
  await utimes(join(c, 'old.txt'), new Date(1_000_000), new Date(1_000_000));
  await sleep(300); // let old.txt's ctime age past the racy window
  await writeFile(join(c, 'fresh.txt'), 'f2');
  const file = join(dir, 'stat', 'cache.json');
  const s1 = await StatCache.load(file);
  await checksumSelection({ root: c, kind: 'context' }, { srcPaths: ['.'], allowWildcard: false }, s1, signal);
  await s1.save();
  const s2 = await StatCache.load(file);
  assert.ok(s2.get(join(c, 'old.txt'), statSync(join(c, 'old.txt'))), 'old file remembered across processes');
  assert.is(s2.get(join(c, 'fresh.txt'), statSync(join(c, 'fresh.txt'))), undefined, 'just-written file not trusted');
  await writeFile(file, '{"version":1,"entries":{"x":[1,2]}}');
  assert.is((await StatCache.load(file)).size, 0, 'malformed entries ignored');
});

test('stat cache: a cache saved in several pieces reloads whole', async () => {
  const file = join(dir, 'stat', 'many.json');
  const s1 = await StatCache.load(file);
  const digest = sha256('x');
  const st = (i: number) => ({ size: i, mtimeMs: 1000 + i, ctimeMs: 2000 + i, ino: 3000 + i }) as Stats;
  for (let i = 0; i < 4501; i++) s1.set(`/ctx/d/"quoted" ${i}\u00e9`, st(i), digest, 1e12);
  await s1.save();
  const s2 = await StatCache.load(file);
  assert.is(s2.size, 4501);
  for (const i of [0, 1999, 2000, 4500]) assert.is(s2.get(`/ctx/d/"quoted" ${i}\u00e9`, st(i)), digest);
  assert.is(s2.get('/ctx/d/"quoted" 7\u00e9', st(8)), undefined);
  // A file cut short (no count trailer, or a count that disagrees) is not trusted in part.
  const lines = (await readFile(file, 'utf8')).split('\n');
  await writeFile(file, lines.slice(0, 3000).join('\n'));
  assert.is((await StatCache.load(file)).size, 0, 'cut short');
  await writeFile(file, [...lines.slice(0, 3000), lines.at(-2)].join('\n'));
  assert.is((await StatCache.load(file)).size, 0, 'count disagrees');
  await writeFile(file, JSON.stringify({ version: 1, entries: { '/ctx/a': [1, 1001, 2001, 3001, digest] } }));
  assert.is((await StatCache.load(file)).size, 0, 'version 1 file');
});

test.run();

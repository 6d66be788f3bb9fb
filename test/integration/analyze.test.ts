import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeBusyboxRootfs } from '../helpers/busybox-rootfs.js';
import { inEveryMode } from '../helpers/every-mode.js';
import { tool } from '../helpers/run-tool.js';
import { useBuildRoot } from '../helpers/build-root.js';
import { tsbuild, tsbuildOk, type CliResult } from '../helpers/cli.js';

/** `tsbuild analyze` on a real build that adds, overwrites and deletes files across layers. */
const test = suite('integration: analyze');
const env = useBuildRoot(test, 'analyze');
const at = (root: string) => ['--root', root];

interface Layer {
  index: number;
  digest: string;
  step: string;
  sizeBytes: number;
  files: number;
  addedFiles: number;
  addedBytes: number;
  changedFiles: number;
  changedBytes: number;
  removedFiles: number;
  removedBytes: number;
  wastedBytes: number;
}
interface Report {
  image: string;
  platform: string;
  efficiency: number;
  wastedBytes: number;
  totalBytes: number;
  layers: Layer[];
  biggestFiles: { path: string; size: number; layer: number }[];
  biggestWasted: { path: string; wastedBytes: number; versions: number; removed: boolean }[];
}

const DOCKERFILE = `FROM busybox
COPY a.bin b.bin /data/
RUN head -c 7000 /dev/zero > /data/a.bin && rm /data/b.bin && mkdir -p /opt/d && head -c 1000 /dev/zero > /opt/d/x && head -c 2000 /dev/zero > /opt/d/y
COPY small.txt /data/small.txt
RUN rm -rf /opt/d
`;
let buildStderr = '';

test.before(async () => {
  const ctx = await env.context(DOCKERFILE, { 'a.bin': 'a'.repeat(3000), 'b.bin': 'b'.repeat(5000), 'small.txt': 'hello\n' });
  buildStderr = (await tsbuildOk([...at(env.root), 'build', '--progress', 'plain', '-t', 'waste', ctx])).stderr;
  await tsbuildOk([...at(env.root), 'build', '-q', '--output', `type=oci,dest=${join(env.work, 'waste.tar')}`, ctx]);
  await tsbuildOk([...at(env.root), 'build', '-q', '--output', `type=oci,dest=${join(env.work, 'layout')},tar=false`, ctx]);
  await tsbuildOk([...at(env.root), 'save', 'waste', '--format', 'docker', '-o', join(env.work, 'docker.tar')]);
});

const analyze = async (spec: string, ...args: string[]): Promise<Report> => JSON.parse((await tsbuildOk([...at(env.root), 'analyze', '--format', 'json', ...args, spec])).stdout) as Report;

test('exact numbers per layer, wasted bytes and efficiency', async () => {
  const r = await analyze('waste');
  assert.is(r.layers.length, 5);
  const nums = (l: Layer) => [l.files, l.sizeBytes, l.addedFiles, l.addedBytes, l.changedFiles, l.changedBytes, l.removedFiles, l.removedBytes, l.wastedBytes];
  assert.equal(r.layers.slice(1).map(nums), [
    [2, 8000, 2, 8000, 0, 0, 0, 0, 8000],
    [3, 10000, 2, 3000, 1, 7000, 1, 5000, 3000],
    [1, 6, 1, 6, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 2, 3000, 0],
  ]);
  assert.equal(r.layers.map((l) => l.step), [
    'COPY rootfs/ /',
    'COPY a.bin b.bin /data/',
    'RUN head -c 7000 /dev/zero > /data/a.bin && rm /data/b.bin && mkdir -p /opt/d && head -c 1000 /dev/zero > /opt/d/x && head -c 2000 /dev/zero > /opt/d/y',
    'COPY small.txt /data/small.txt',
    'RUN rm -rf /opt/d',
  ]);
  const base = r.layers[0]!;
  assert.is(base.wastedBytes, 0);
  assert.is(base.addedFiles, base.files);
  assert.is(r.totalBytes, base.sizeBytes + 18006);
  assert.is(r.wastedBytes, 11000);
  assert.is(r.efficiency, 1 - 11000 / r.totalBytes);
  assert.equal(r.biggestWasted.map((w) => [w.path, w.wastedBytes, w.versions, w.removed]), [
    ['/data/b.bin', 5000, 1, true],
    ['/data/a.bin', 3000, 2, false],
    ['/opt/d/y', 2000, 1, true],
    ['/opt/d/x', 1000, 1, true],
  ]);
  assert.ok(r.biggestFiles.some((f) => f.path === '/data/a.bin' && f.size === 7000 && f.layer === 2));
  assert.not.ok(r.biggestFiles.some((f) => f.path.startsWith('/opt/d/') || f.path === '/data/b.bin'), 'deleted files are not in the final filesystem');
});

test('local name, OCI archive, OCI layout dir and docker archive agree', async () => {
  const strip = (r: Report) => ({ ...r, image: '' });
  // The same files in other blobs: another manifest, layer digests, media types and blob sizes.
  const filesOnly = (r: Report) => ({
    ...strip(r),
    manifestDigest: '',
    layers: r.layers.map((l) => {
      const { digest: _d, mediaType: _m, blobSize: _b, ...rest } = l as Layer & { mediaType?: string; blobSize?: number };
      return rest;
    }),
  });
  const exported = strip(await analyze(join(env.work, 'waste.tar')));
  for (const spec of [`oci-archive:${join(env.work, 'waste.tar')}`, join(env.work, 'layout'), `oci-layout://${join(env.work, 'layout')}`]) {
    assert.equal(strip(await analyze(spec)), exported, spec);
  }
  // A docker archive's layers are plain tars; the local store keeps the build's layers
  // uncompressed too (the exports above carry them gzip): the same files either way.
  assert.equal(filesOnly(await analyze(`docker-archive:${join(env.work, 'docker.tar')}`)), filesOnly(exported), 'docker archive');
  const local = await analyze('waste');
  assert.equal(filesOnly(local), filesOnly(exported), 'local store');
  assert.is((local as Report & { configDigest?: string }).configDigest, (exported as Report & { configDigest?: string }).configDigest, 'the same image ID');
});

test('per-layer files and bytes match tar -tv of the blobs (an independent reader)', async () => {
  const r = await analyze(join(env.work, 'layout'));
  for (const l of r.layers) {
    const blob = join(env.work, 'layout', 'blobs', 'sha256', l.digest.slice(7));
    // GNU tar sniffs the compression itself: `-rw-r--r-- 0/0    3000 2026-01-01 00:00 data/a.bin`.
    const lines = execFileSync('tar', ['-tvf', blob], { maxBuffer: 1 << 26 }).toString().split('\n').filter(Boolean);
    const entries = lines.map((line) => {
      const m = /^(\S)\S*\s+\S+\s+(\d+)\s+\S+\s+\S+\s+(.*)$/.exec(line)!;
      return { type: m[1]!, size: Number(m[2]), name: m[3]!.replace(/ (->|link to) .*$/, '') };
    });
    const files = entries.filter((e) => e.type !== 'd' && !/(^|\/)\.wh\./.test(e.name));
    assert.is(l.files, files.length, `files of layer ${l.index}`);
    assert.is(l.sizeBytes, files.filter((e) => e.type === '-').reduce((n, e) => n + e.size, 0), `bytes of layer ${l.index}`);
    assert.is(l.removedFiles > 0, entries.some((e) => /(^|\/)\.wh\./.test(e.name)), `whiteouts of layer ${l.index}`);
  }
});

test('gates: --max-wasted and --min-efficiency exit 1 with the reason; bad values are usage errors', async () => {
  const over = await tsbuild([...at(env.root), 'analyze', '--max-wasted', '10000', 'waste']);
  assert.is(over.code, 1);
  assert.match(over.stderr, /^analyze: wasted bytes 11000 exceed --max-wasted 10000\n$/);
  assert.match(over.stdout, /efficiency/, 'the report is still printed');
  assert.is((await tsbuild([...at(env.root), 'analyze', '--max-wasted', '11000', '--min-efficiency', '0.5', 'waste'])).code, 0);
  const low = await tsbuild([...at(env.root), 'analyze', '--format', 'json', '--min-efficiency', '1', 'waste']);
  assert.is(low.code, 1);
  assert.match(low.stderr, /^analyze: efficiency 0\.\d{4} is below --min-efficiency 1\n$/);
  JSON.parse(low.stdout);
  const bad = await tsbuild([...at(env.root), 'analyze', '--min-efficiency', '95%', 'waste']);
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /--min-efficiency "95%": expected a ratio from 0 to 1/);
  const missing = await tsbuild([...at(env.root), 'analyze', 'nosuch']);
  assert.is(missing.code, 1);
  assert.match(missing.stderr, /image nosuch is not in the local store, and no layout directory or archive file has that path/);
});

test('--platform picks one image of a multi-platform index; the host platform by default', async () => {
  const ctx = await env.context('FROM scratch\nARG TARGETARCH\nCOPY $TARGETARCH.txt /which\n', { 'arm64.txt': 'arm64 arm64\n', 'amd64.txt': 'amd64\n' });
  const tar = join(env.work, 'multi.tar');
  await tsbuildOk([...at(env.root), 'build', '-q', '--platform', 'linux/arm64,linux/amd64', '--output', `type=oci,dest=${tar}`, ctx]);
  const arm = await analyze(tar, '--platform', 'linux/arm64');
  assert.equal([arm.platform, arm.totalBytes, arm.biggestFiles[0]?.path], ['linux/arm64', 12, '/which']);
  const amd = await analyze(tar, '--platform', 'linux/amd64');
  assert.equal([amd.platform, amd.totalBytes], ['linux/amd64', 6]);
  if (process.arch === 'x64') assert.equal(await analyze(tar), amd);
  const none = await tsbuild([...at(env.root), 'analyze', '--platform', 'linux/s390x', tar]);
  assert.is(none.code, 1);
  assert.match(none.stderr, /no manifest for linux\/s390x/);
});

test('a corrupt layer is an error naming it, not an interrupt', async () => {
  const r = await analyze(join(env.work, 'layout'));
  const broken = join(env.work, 'broken');
  await tool('cp', ['-r', join(env.work, 'layout'), broken]);
  const digest = r.layers[2]!.digest;
  await tool('truncate', ['-s', '100', join(broken, 'blobs', 'sha256', digest.slice(7))]);
  const res = await tsbuild([...at(env.root), 'analyze', broken]);
  assert.is(res.code, 1, res.stderr);
  assert.ok(res.stderr.includes(`layer ${digest}: `), res.stderr);
});

test('table and tree views', async () => {
  const table = (await tsbuildOk([...at(env.root), 'analyze', 'waste'])).stdout;
  assert.match(table, /^#\s+SIZE\s+ADDED\s+CHANGED\s+REMOVED\s+WASTED\s+STEP$/m);
  assert.match(table, /^2\s+10\.0kB\s+2 \(3\.00kB\)\s+1 \(7\.00kB\)\s+1 \(5\.00kB\)\s+3\.00kB\s+RUN head -c 7000/m);
  assert.match(table, /wasted 11\.0kB in 4 paths; efficiency/);
  const tree = (await tsbuildOk([...at(env.root), 'analyze', '--tree', '--layer', '2', 'waste'])).stdout;
  assert.match(tree, /^M\s+7\.00kB\s+a\.bin$/m);
  assert.match(tree, /^D\s+5\.00kB\s+b\.bin$/m);
  assert.match(tree, /^A\s+3\.00kB\s+d\/$/m);
  const all = (await tsbuildOk([...at(env.root), 'analyze', '--tree', '--depth', '1', 'waste'])).stdout;
  assert.match(all, /^\s+7\.01kB\s+data\/$/m);
  assert.not.match(all, /^\s+\S+\s+opt\/$/m, 'no files are left under /opt');
  assert.is((await tsbuild([...at(env.root), 'analyze', '--tree', '--layer', '9', 'waste'])).code, 2);
});

test('the build warned about the file it added and removed later', () => {
  assert.match(buildStderr, /FileRemovedInLaterStep/);
  assert.match(buildStderr, /\/data\/b\.bin is added by COPY on line 2 and removed by this RUN/);
});

test('root, root without CAP_SYS_ADMIN and a user with subordinate ids analyze their builds alike', async () => {
  let ctx = '';
  const byMode = await inEveryMode(
    {},
    async (shared) => {
      ctx = join(shared, 'ctx');
      await mkdir(ctx, { recursive: true });
      await makeBusyboxRootfs(join(ctx, 'rootfs'));
      await writeFile(join(ctx, 'Base.Dockerfile'), 'FROM scratch\nCOPY rootfs/ /\nCMD ["sh"]\n');
      await writeFile(join(ctx, 'Dockerfile'), DOCKERFILE);
      await writeFile(join(ctx, 'a.bin'), 'a'.repeat(3000));
      await writeFile(join(ctx, 'b.bin'), 'b'.repeat(5000));
      await writeFile(join(ctx, 'small.txt'), 'hello\n');
      await tool('chmod', ['-R', 'a+rX', ctx]);
    },
    async (mode) => {
      const ok = (r: CliResult, what: string): CliResult => {
        assert.is(r.code, 0, `${mode.name}: ${what}: ${r.stderr}`);
        return r;
      };
      ok(await mode.run([...mode.rootArgs, 'build', '-f', join(ctx, 'Base.Dockerfile'), '-t', 'busybox', ctx]), 'base');
      ok(await mode.run([...mode.rootArgs, 'build', '-t', 'waste', ctx]), 'image');
      const r = JSON.parse(ok(await mode.run([...mode.rootArgs, 'analyze', '--format', 'json', 'waste']), 'analyze').stdout) as Report;
      return { wasted: r.wastedBytes, layers: r.layers.slice(1).map((l) => [l.files, l.sizeBytes, l.addedFiles, l.changedFiles, l.removedFiles, l.removedBytes, l.wastedBytes]) };
    },
  );
  assert.is(byMode.root.wasted, 11000);
  assert.equal(byMode['no CAP_SYS_ADMIN'], byMode.root);
  assert.equal(byMode.rootless, byMode.root);
});

test.run();

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ImageLayout } from '../../../src/oci/image-layout.js';
import { digestHex } from '../../../src/oci/digest.js';
import { REF_NAME_ANNOTATION } from '../../../src/oci/media-types.js';
import { exportOciLayout } from '../../../src/exporter/oci-layout.js';
import { exportOciArchive } from '../../../src/exporter/oci-archive.js';
import { exportDockerArchive } from '../../../src/exporter/docker-archive.js';
import { nullSink } from '../../../src/events.js';
import type { Ctx } from '../../../src/ctx.js';
import { makeHandMadeImage, type HandMadeImage } from '../../helpers/hand-made-image.js';
import { snapshotTree } from '../../helpers/tree-compare.js';

const run = promisify(execFile);
const test = suite('exporters (checked with skopeo, umoci, oci-image-tool)');
const ctx: Ctx = { signal: new AbortController().signal, events: nullSink };
let dir = '';
let store: ImageLayout;
let img: HandMadeImage;

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tsbuild-exp-'));
  store = await ImageLayout.open(join(dir, 'store'), { create: true, tmpDir: join(dir, 'tmp') });
  img = await makeHandMadeImage(store, 'docker.io/library/hello:latest');
});
test.after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function skopeoInspect(transport: string): Promise<{ Digest: string; Layers: string[]; Architecture: string }> {
  const { stdout } = await run('skopeo', ['inspect', transport]);
  return JSON.parse(stdout);
}

test('OCI layout: oci-image-tool validates, skopeo and umoci read it, tags are the tag only', async () => {
  const out = join(dir, 'layout');
  await exportOciLayout(store.blobs, img.manifest, out, ['hello:latest', 'docker.io/library/hello:v1'], ctx);
  await run('oci-image-tool', ['validate', '--type', 'image', '--ref', 'name=latest', out]);
  await run('oci-image-tool', ['validate', '--type', 'image', '--ref', 'name=v1', out]);
  const info = await skopeoInspect(`oci:${out}:latest`);
  assert.is(info.Digest, img.manifest.digest);
  assert.equal(info.Layers, img.layers.map((l) => l.digest));
  const idx = JSON.parse(await readFile(join(out, 'index.json'), 'utf8'));
  assert.equal(idx.manifests.map((m: { annotations: Record<string, string> }) => m.annotations), [
    { 'io.containerd.image.name': 'docker.io/library/hello:latest', [REF_NAME_ANNOTATION]: 'latest' },
    { 'io.containerd.image.name': 'docker.io/library/hello:v1', [REF_NAME_ANNOTATION]: 'v1' },
  ]);
  // Blobs are copies, never links: editing the export must not reach the store.
  const layer = img.layers[0]!;
  assert.is.not((await stat(join(out, 'blobs', 'sha256', digestHex(layer.digest)))).ino, (await stat(store.blobs.path(layer.digest))).ino);
  assert.equal((await readdir(out)).sort(), ['blobs', 'index.json', 'oci-layout']);
});

test('OCI layout on another filesystem: blobs are copied (verified), not linked', async () => {
  const shm = await mkdtemp('/dev/shm/tsbuild-exp-');
  try {
    const out = join(shm, 'layout');
    await exportOciLayout(store.blobs, img.manifest, out, ['hello:latest'], ctx);
    const layer = img.layers[1]!;
    const copied = await stat(join(out, 'blobs', 'sha256', digestHex(layer.digest)));
    assert.is(copied.nlink, 1);
    assert.is(copied.size, layer.size);
    await run('oci-image-tool', ['validate', '--type', 'image', '--ref', 'name=latest', out]);
  } finally {
    await rm(shm, { recursive: true, force: true });
  }
});

test('OCI layout: exporting into an existing layout merges and replaces by tag', async () => {
  const out = join(dir, 'merge');
  await exportOciLayout(store.blobs, img.manifest, out, ['a:one'], ctx);
  await exportOciLayout(store.blobs, img.manifest, out, ['a:two'], ctx);
  await exportOciLayout(store.blobs, img.manifest, out, ['b:one'], ctx);
  const idx = JSON.parse(await readFile(join(out, 'index.json'), 'utf8'));
  const names = idx.manifests.map((m: { annotations: Record<string, string> }) => m.annotations['io.containerd.image.name']).sort();
  assert.equal(names, ['docker.io/library/a:two', 'docker.io/library/b:one']);
  await skopeoInspect(`oci:${out}:one`);
  await skopeoInspect(`oci:${out}:two`);
});

test('OCI archive: skopeo reads it; same bytes each time; atomic temp file is gone', async () => {
  const f = join(dir, 'oci.tar');
  await exportOciArchive(store.blobs, img.manifest, f, ['hello:latest'], ctx);
  const info = await skopeoInspect(`oci-archive:${f}:latest`);
  assert.is(info.Digest, img.manifest.digest);
  const { stdout } = await run('tar', ['-tf', f]);
  assert.equal(stdout.trim().split('\n').slice(0, 4), ['oci-layout', 'index.json', 'blobs/', 'blobs/sha256/']);
  const f2 = join(dir, 'oci2.tar');
  await exportOciArchive(store.blobs, img.manifest, f2, ['hello:latest'], ctx);
  assert.ok((await readFile(f)).equals(await readFile(f2)), 'deterministic archive');
  assert.not.ok((await readdir(dir)).some((n) => n.endsWith('.tmp')));
});

test('OCI archive: an aborted export leaves neither the file nor a temp file', async () => {
  const f = join(dir, 'aborted.tar');
  const ac = new AbortController();
  ac.abort(new Error('stop'));
  try {
    await exportOciArchive(store.blobs, img.manifest, f, [], { signal: ac.signal, events: nullSink });
    assert.unreachable('should abort');
  } catch {
    // expected
  }
  assert.not.ok((await readdir(dir)).some((n) => n.includes('aborted')));
});

test('docker archive: skopeo reads it, manifest.json as docker save writes it, round trip via skopeo copy', async () => {
  const f = join(dir, 'docker.tar');
  await exportDockerArchive(store.blobs, img.manifest, f, ['docker.io/library/hello:latest', 'localhost:5000/x:1'], ctx);
  const info = await skopeoInspect(`docker-archive:${f}`);
  assert.is(info.Layers.length, 2);
  const x = join(dir, 'docker-x');
  await mkdir(x);
  await run('tar', ['-C', x, '-xf', f]);
  const mj = JSON.parse(await readFile(join(x, 'manifest.json'), 'utf8'));
  assert.equal(mj, [
    {
      Config: `blobs/sha256/${digestHex(img.config.digest)}`,
      RepoTags: ['hello:latest', 'localhost:5000/x:1'],
      Layers: img.layers.map((l) => `blobs/sha256/${digestHex(l.digest)}`),
    },
  ]);
  // The embedded OCI layout is usable too (docker 25+ shape).
  await run('oci-image-tool', ['validate', '--type', 'image', '--ref', 'name=latest', x]);
  // skopeo copy oci-archive → docker-archive → oci: the config (and so the diffIDs) survive.
  const oa = join(dir, 'rt.tar');
  await exportOciArchive(store.blobs, img.manifest, oa, ['hello:latest'], ctx);
  const da = join(dir, 'rt-docker.tar');
  await run('skopeo', ['copy', '-q', `oci-archive:${oa}:latest`, `docker-archive:${da}:hello:latest`]);
  const back = join(dir, 'rt-oci');
  await run('skopeo', ['copy', '-q', `docker-archive:${da}`, `oci:${back}:latest`]);
  const backIdx = JSON.parse(await readFile(join(back, 'index.json'), 'utf8'));
  const backManifest = JSON.parse(await readFile(join(back, 'blobs', 'sha256', backIdx.manifests[0].digest.slice(7)), 'utf8'));
  const backConfig = JSON.parse(await readFile(join(back, 'blobs', 'sha256', backManifest.config.digest.slice(7)), 'utf8'));
  assert.equal(backConfig.rootfs.diff_ids, img.diffIds);
  // And skopeo can read our docker archive into a layout as well.
  const back2 = join(dir, 'rt-oci2');
  await run('skopeo', ['copy', '-q', `docker-archive:${f}`, `oci:${back2}:latest`]);
});

test('umoci applies the hand-made layers as expected (whiteouts, opaque dir, owners)', async () => {
  const layout = join(dir, 'layout');
  await exportOciLayout(store.blobs, img.manifest, layout, ['hello:latest'], ctx);
  const bundle = join(dir, 'bundle');
  await run('umoci', ['unpack', '--image', `${layout}:latest`, bundle]);
  const t = await snapshotTree(join(bundle, 'rootfs'));
  assert.not.ok(t.has('bin/vi'), '.wh.vi deletes /bin/vi');
  assert.not.ok(t.has('etc/group'), '.wh.group deletes /etc/group');
  assert.not.ok(t.has('var/old'), 'opaque /var hides the lower content');
  assert.ok(t.has('var/new'));
  assert.not.ok([...t.keys()].some((p) => p.includes('.wh.')), 'no whiteout markers');
  assert.equal(t.get('home/app/private/secret'), { type: 'file', mode: 0o600, uid: 1000, gid: 1000, size: 11, sha256: t.get('home/app/private/secret')!.sha256 });
  assert.is(t.get('bin/motd')?.link, '../etc/motd');
  assert.is(t.get('bin/sh')?.link, 'busybox');
});

test.run();

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ImageLayout } from '../../../src/oci/image-layout.js';
import { MediaType, REF_NAME_ANNOTATION } from '../../../src/oci/media-types.js';
import { BuildError } from '../../../src/errors.js';

const test = suite('ImageLayout');
const layoutModule = fileURLToPath(new URL('../../../src/oci/image-layout.js', import.meta.url));
let dir = '';

test.before.each(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tsbuild-il-'));
});
test.after.each(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('open(create) writes oci-layout, empty index.json and blobs/sha256', async () => {
  const store = join(dir, 'store');
  await ImageLayout.open(store, { create: true, tmpDir: join(dir, 'tmp') });
  assert.equal(JSON.parse(await readFile(join(store, 'oci-layout'), 'utf8')), { imageLayoutVersion: '1.0.0' });
  assert.equal(JSON.parse(await readFile(join(store, 'index.json'), 'utf8')), { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] });
  assert.equal(await readdir(join(store, 'blobs', 'sha256')), []);
  // Re-opening keeps existing content.
  const l = await ImageLayout.open(store, { create: true });
  const { digest, size } = await l.blobs.putBytes('{}');
  await l.tag('a', { mediaType: MediaType.ociManifest, digest, size });
  const again = await ImageLayout.open(store, { create: true });
  assert.is((await again.list()).length, 1);
});

test('re-opening and re-tagging to the same image leave index.json as it is (no rewrite); a change rewrites it', async () => {
  const store = join(dir, 'store');
  const l = await ImageLayout.open(store, { create: true, tmpDir: join(dir, 'tmp') });
  const { digest, size } = await l.blobs.putBytes('{}');
  await l.tag('a', { mediaType: MediaType.ociManifest, digest, size });
  // Every write is a temp file renamed over index.json: a new inode.
  const ino = async () => (await stat(join(store, 'index.json'))).ino;
  const first = await ino();
  await ImageLayout.open(store, { create: true, tmpDir: join(dir, 'tmp') });
  await l.tag('a', { mediaType: MediaType.ociManifest, digest, size });
  assert.is(await ino(), first);
  await l.tag('b', { mediaType: MediaType.ociManifest, digest, size });
  assert.is.not(await ino(), first);
  assert.equal((await l.list()).map((e) => e.name), ['a', 'b']);
});

test('open without create on a missing layout is STORE_CORRUPT', async () => {
  try {
    await ImageLayout.open(join(dir, 'nope'), { create: false });
    assert.unreachable();
  } catch (e) {
    assert.instance(e, BuildError);
    assert.is((e as BuildError).code, 'STORE_CORRUPT');
  }
});

test('tag, resolve, retag replaces, untag, list', async () => {
  const l = await ImageLayout.open(join(dir, 's'), { create: true });
  const a = await l.blobs.putBytes('{"a":1}');
  const b = await l.blobs.putBytes('{"b":1}');
  const da = { mediaType: MediaType.ociManifest, ...a, annotations: { 'x.y': 'z' } };
  const db = { mediaType: MediaType.ociManifest, ...b };
  await l.tag('docker.io/library/one:latest', da);
  await l.tag('docker.io/library/two:latest', da);
  assert.is((await l.resolve('docker.io/library/one:latest'))?.digest, a.digest);
  assert.is((await l.resolve('docker.io/library/one:latest'))?.annotations?.['x.y'], 'z');
  await l.tag('docker.io/library/one:latest', db);
  assert.is((await l.resolve('docker.io/library/one:latest'))?.digest, b.digest);
  assert.is((await l.resolve('docker.io/library/two:latest'))?.digest, a.digest);
  const names = (await l.list()).map((e) => e.name).sort();
  assert.equal(names, ['docker.io/library/one:latest', 'docker.io/library/two:latest']);
  assert.ok(await l.untag('docker.io/library/two:latest'));
  assert.not.ok(await l.untag('docker.io/library/two:latest'));
  assert.is(await l.resolve('docker.io/library/two:latest'), undefined);
  const idx = JSON.parse(await readFile(join(dir, 's', 'index.json'), 'utf8'));
  assert.is(idx.manifests.length, 1);
  assert.is(idx.manifests[0].annotations[REF_NAME_ANNOTATION], 'docker.io/library/one:latest');
  // No lock or temp files remain next to index.json.
  assert.equal((await readdir(join(dir, 's'))).sort(), ['.tmp', 'blobs', 'index.json', 'oci-layout']);
});

test('a stale lock (dead pid) is broken; concurrent in-process tags all land', async () => {
  const l = await ImageLayout.open(join(dir, 's'), { create: true });
  const { digest, size } = await l.blobs.putBytes('{}');
  // A pid that cannot be alive: above the kernel's pid_max.
  await writeFile(join(dir, 's', 'index.json.lock'), '99999999');
  await Promise.all(Array.from({ length: 30 }, (_, i) => l.tag(`t${i}`, { mediaType: MediaType.ociManifest, digest, size })));
  assert.is((await l.list()).length, 30);
});

test('20 tags from each of 2 child processes all land', async () => {
  const store = join(dir, 's');
  const l = await ImageLayout.open(store, { create: true });
  const { digest, size } = await l.blobs.putBytes('{}');
  const script = `
    const { ImageLayout } = await import(${JSON.stringify(layoutModule)});
    const [store, prefix, digest, size] = process.argv.slice(1);
    const l = await ImageLayout.open(store, { create: true });
    await Promise.all(Array.from({ length: 20 }, (_, i) =>
      l.tag(prefix + i, { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, size: Number(size) })));
  `;
  const run = (prefix: string) => promisify(execFile)(process.execPath, ['--input-type=module', '-e', script, store, prefix, digest, String(size)]);
  await Promise.all([run('p1-'), run('p2-')]);
  const names = (await l.list()).map((e) => e.name).sort();
  assert.is(names.length, 40);
  for (let i = 0; i < 20; i++) {
    assert.ok(names.includes(`p1-${i}`));
    assert.ok(names.includes(`p2-${i}`));
  }
});

test.run();

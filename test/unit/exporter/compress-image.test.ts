import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { ContentStore } from '../../../src/oci/content-store.js';
import { sha256, type Digest } from '../../../src/oci/digest.js';
import type { Descriptor } from '../../../src/oci/image.js';
import { createLayerBlob, intoContentStore } from '../../../src/oci/layer/blob.js';
import { MediaType } from '../../../src/oci/media-types.js';
import { storeImage } from '../../../src/orchestrator/assemble-image.js';
import { compressImage, compressedLayer, compressedLayers } from '../../../src/exporter/compress-image.js';

const test = suite('compressImage');
let tmp = '';
const signal = new AbortController().signal;

test.before.each(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'tsbuild-compress-'));
});
test.after.each(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function store(name: string): Promise<ContentStore> {
  await mkdir(join(tmp, name, 'blobs/sha256'), { recursive: true });
  await mkdir(join(tmp, name, 'tmp'), { recursive: true });
  return new ContentStore(join(tmp, name), join(tmp, name, 'tmp'));
}

/** An image of one layer as a build stores it (uncompressed), 3 MiB so gzip cuts several blocks. */
async function image(blobs: ContentStore): Promise<{ manifest: Descriptor; diffId: Digest }> {
  const u = await mkdtemp(join(tmp, 'upper-'));
  const text = Array.from({ length: 120_000 }, (_, i) => `line ${i} ${i * 7919 % 1000}\n`).join('');
  await writeFile(join(u, 'f'), text);
  for (const p of ['f', '.']) await utimes(join(u, p), 1000, 1000);
  const l = await createLayerBlob(u, intoContentStore(blobs));
  assert.is(l.digest, l.diffId, 'a build stores the tar itself');
  const config = { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers' as const, diff_ids: [l.diffId] } };
  const img = await storeImage(blobs, config, [{ mediaType: MediaType.ociLayer, digest: l.digest, size: l.size }]);
  return { manifest: img.manifest, diffId: l.diffId };
}

const layersOf = async (blobs: ContentStore, d: Descriptor) => (await blobs.readJson<{ layers: Descriptor[] }>(d.digest)).layers;
const count = async (s: ContentStore) => (await readdir(join(s.path(sha256('')), '..'))).length;

test('gzip on demand: a valid gzip of the diffID, remembered so a second export writes nothing', async () => {
  const blobs = await store('a');
  const { manifest, diffId } = await image(blobs);
  const memo = join(tmp, 'memo');
  const out = await compressImage(blobs, memo, manifest, { compression: 'gzip' }, signal);
  assert.is.not(out.digest, manifest.digest);
  const [l] = await layersOf(blobs, out);
  assert.is(l!.mediaType, MediaType.ociLayerGzip);
  assert.is(sha256(gunzipSync(await blobs.readBytes(l!.digest as Digest, 1 << 30))), diffId);
  // gzip -t checks the whole stream, trailer included.
  execFileSync('gzip', ['-t', blobs.path(l!.digest as Digest)]);
  const before = await count(blobs);
  const again = await compressImage(blobs, memo, manifest, { compression: 'gzip' }, signal);
  assert.equal(again, out);
  assert.is(await count(blobs), before, 'the second export stored nothing');
  assert.equal([...(await compressedLayers(memo)).get(diffId)!], [l!.digest]);
});

test('the same content and options give the same bytes in another store', async () => {
  const a = await store('a');
  const b = await store('b');
  const ia = await image(a);
  const ib = await image(b);
  assert.is(ia.diffId, ib.diffId);
  for (const level of [1, 6]) {
    const oa = await compressImage(a, join(tmp, 'ma'), ia.manifest, { compression: 'gzip', level }, signal);
    const ob = await compressImage(b, join(tmp, 'mb'), ib.manifest, { compression: 'gzip', level }, signal);
    assert.is(oa.digest, ob.digest, `level ${level}`);
  }
});

test('uncompressed stays; gzip layers stay without force, and are converted with it', async () => {
  const blobs = await store('a');
  const { manifest, diffId } = await image(blobs);
  const memo = join(tmp, 'memo');
  assert.equal(await compressImage(blobs, memo, manifest, { compression: 'uncompressed' }, signal), manifest);
  const gz = await compressImage(blobs, memo, manifest, { compression: 'gzip', level: 9 }, signal);
  const [gzLayer] = await layersOf(blobs, gz);
  // A gzip image asked for uncompressed: kept (BuildKit's force-compression=false)…
  assert.equal(await compressImage(blobs, memo, gz, { compression: 'uncompressed' }, signal), gz);
  // …or another level of gzip: the type matches, nothing to do.
  assert.equal(await compressImage(blobs, memo, gz, { compression: 'gzip', level: 1, force: true }, signal), gz);
  // force: decompressed (and checked against the diff_id) into the tar again.
  const forced = await compressImage(blobs, memo, gz, { compression: 'uncompressed', force: true }, signal);
  const [plain] = await layersOf(blobs, forced);
  assert.is(plain!.mediaType, MediaType.ociLayer);
  assert.is(plain!.digest, diffId);
  assert.is(forced.digest, manifest.digest, 'back to the stored manifest, byte for byte');
  // A single layer (cache export) converts the same way and shares the memo.
  const one = await compressedLayer(blobs, memo, { mediaType: MediaType.ociLayer, digest: diffId, size: 1 }, diffId, { compression: 'gzip', level: 9 }, signal);
  assert.is(one.digest, gzLayer!.digest);
});

test('a forced conversion refuses a blob that does not unpack to its diff_id', async () => {
  const blobs = await store('a');
  const { manifest } = await image(blobs);
  const gz = await compressImage(blobs, join(tmp, 'memo'), manifest, { compression: 'gzip' }, signal);
  const [l] = await layersOf(blobs, gz);
  const wrong = sha256('not this layer');
  const err = await compressedLayer(blobs, join(tmp, 'memo'), l!, wrong, { compression: 'uncompressed', force: true }, signal).then(() => undefined, (e: Error) => e);
  assert.ok(err, 'the conversion must fail');
  assert.match(err!.message, /digest|unpacks to/, err!.message);
  assert.is(await compressedLayers(join(tmp, 'memo')).then((m) => m.get(wrong)), undefined, 'nothing remembered');
});

test('Docker-typed manifests get Docker layer types', async () => {
  const blobs = await store('a');
  const { manifest } = await image(blobs);
  const raw = await blobs.readJson<Record<string, unknown>>(manifest.digest);
  const layers = (raw.layers as Descriptor[]).map((l) => ({ ...l, mediaType: MediaType.dockerLayer }));
  const put = await blobs.putBytes(JSON.stringify({ ...raw, mediaType: MediaType.dockerManifest, layers }));
  const out = await compressImage(blobs, join(tmp, 'memo'), { mediaType: MediaType.dockerManifest, digest: put.digest, size: put.size }, { compression: 'gzip' }, signal);
  assert.is((await layersOf(blobs, out))[0]!.mediaType, MediaType.dockerLayerGzip);
});

test('an index: images converted, entries keep platform and annotations; an attestation about a changed image is refused', async () => {
  const blobs = await store('a');
  const { manifest } = await image(blobs);
  const platform = { os: 'linux', architecture: 'amd64' };
  const plain = await blobs.putBytes(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [{ ...manifest, platform, annotations: { a: 'b' } }] }));
  const out = await compressImage(blobs, join(tmp, 'memo'), { mediaType: MediaType.ociIndex, digest: plain.digest, size: plain.size }, { compression: 'gzip' }, signal);
  const entries = (await blobs.readJson<{ manifests: Descriptor[] & { platform?: unknown }[] }>(out.digest)).manifests;
  assert.is(entries.length, 1);
  assert.equal((entries[0] as unknown as { platform: unknown }).platform, platform);
  assert.equal(entries[0]!.annotations, { a: 'b' });
  assert.is((await layersOf(blobs, entries[0]!))[0]!.mediaType, MediaType.ociLayerGzip);
  const attestation = { mediaType: MediaType.ociManifest, digest: manifest.digest, size: manifest.size, annotations: { 'vnd.docker.reference.type': 'attestation-manifest', 'vnd.docker.reference.digest': manifest.digest }, platform: { os: 'unknown', architecture: 'unknown' } };
  const attested = await blobs.putBytes(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [{ ...manifest, platform }, attestation] }));
  const err = await compressImage(blobs, join(tmp, 'memo'), { mediaType: MediaType.ociIndex, digest: attested.digest, size: attested.size }, { compression: 'zstd' }, signal).then(() => undefined, (e: Error) => e);
  assert.ok(err, 'refused');
  assert.match(err!.message, /attestation .* is about image .* which this output's compression \(zstd\) would change/);
});

test.run();

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dockerManifestJson, dockerManifestListJson, toDockerMediaTypes } from '../../../src/exporter/docker-media-types.js';
import { BuildError } from '../../../src/errors.js';
import { ATTESTATION_MANIFEST, ATTESTATION_REF_DIGEST, ATTESTATION_REF_TYPE } from '../../../src/oci/attestation.js';
import { ContentStore } from '../../../src/oci/content-store.js';
import { sha256 } from '../../../src/oci/digest.js';
import type { Descriptor } from '../../../src/oci/image.js';
import { readImage } from '../../../src/oci/image-reader.js';
import { MediaType } from '../../../src/oci/media-types.js';

const test = suite('oci-mediatypes=false: Docker schema2 conversion');
let dir = '';
let blobs: ContentStore;

test.before.each(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tsbuild-dmt-'));
  blobs = new ContentStore(join(dir, 'l'), join(dir, 't'));
});
test.after.each(async () => {
  await rm(dir, { recursive: true, force: true });
});

const A = sha256('a');
const B = sha256('b');
const C = sha256('c');

test('manifest: Docker types, same digests and sizes, fixed key order; layer annotations dropped, urls and manifest annotations kept', () => {
  const json = dockerManifestJson({
    config: { mediaType: MediaType.ociConfig, digest: A, size: 10 },
    layers: [
      { mediaType: MediaType.ociLayerGzip, digest: B, size: 20, annotations: { 'buildkit/createdat': 'x' } },
      { mediaType: MediaType.ociForeignLayerGzip, digest: C, size: 30, urls: ['https://example.com/l'] },
      { mediaType: MediaType.dockerLayerGzip, digest: B, size: 20 },
    ],
    annotations: { 'org.example': 'v' },
  });
  assert.is(
    json,
    `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",` +
      `"config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":10,"digest":"${A}"},` +
      `"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":20,"digest":"${B}"},` +
      `{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","size":30,"digest":"${C}","urls":["https://example.com/l"]},` +
      `{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":20,"digest":"${B}"}],` +
      `"annotations":{"org.example":"v"}}`,
  );
});

test('manifest: an uncompressed layer gets Docker\'s tar type', () => {
  const m = JSON.parse(dockerManifestJson({ config: { mediaType: MediaType.ociConfig, digest: A, size: 1 }, layers: [{ mediaType: MediaType.ociLayer, digest: B, size: 2 }] })) as { layers: Descriptor[]; annotations?: unknown };
  assert.is(m.layers[0]!.mediaType, 'application/vnd.docker.image.rootfs.diff.tar');
  assert.is(m.annotations, undefined);
});

test('manifest: zstd layers get containerd\'s Docker zstd type, as BuildKit gives them', () => {
  const m = JSON.parse(dockerManifestJson({ config: { mediaType: MediaType.ociConfig, digest: A, size: 1 }, layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd', digest: B, size: 2 }] }));
  assert.is(m.layers[0].mediaType, 'application/vnd.docker.image.rootfs.diff.tar.zstd');
});

test('manifest: a layer type Docker has no equivalent for (nondistributable zstd) is a usage error naming it', () => {
  try {
    dockerManifestJson({ config: { mediaType: MediaType.ociConfig, digest: A, size: 1 }, layers: [{ mediaType: 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd', digest: B, size: 2 }] });
    assert.unreachable('should throw');
  } catch (e) {
    assert.instance(e, BuildError);
    assert.is((e as BuildError).code, 'USAGE');
    assert.match((e as Error).message, /oci-mediatypes=false: layer sha256:[0-9a-f]{64} has media type "application\/vnd.oci.image.layer.nondistributable.v1.tar\+zstd"/);
  }
});

test('manifest list: entries keep digest, size and platform; annotations go', () => {
  const json = dockerManifestListJson([
    { mediaType: MediaType.dockerManifest, digest: A, size: 5, platform: { os: 'linux', architecture: 'arm', variant: 'v7' }, annotations: { x: 'y' } },
  ]);
  assert.is(
    json,
    `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":5,"digest":"${A}","platform":{"os":"linux","architecture":"arm","variant":"v7"}}]}`,
  );
});

async function put(mediaType: string, value: unknown): Promise<Descriptor> {
  const { digest, size } = await blobs.putBytes(JSON.stringify(value));
  return { mediaType, digest, size };
}

/** A stored OCI image whose one "layer" is any bytes (readImage checks only the diff_ids count). */
async function ociImage(tag: string): Promise<{ manifest: Descriptor; config: Descriptor; layer: Descriptor }> {
  const layerBlob = await blobs.putBytes(`layer ${tag}`);
  const layer = { mediaType: MediaType.ociLayerGzip, digest: layerBlob.digest, size: layerBlob.size };
  const config = await put(MediaType.ociConfig, { architecture: 'amd64', os: 'linux', config: { Healthcheck: { Test: ['CMD', 'true'] }, Shell: ['/bin/sh', '-c'] }, rootfs: { type: 'layers', diff_ids: [sha256(tag)] } });
  const manifest = await put(MediaType.ociManifest, { schemaVersion: 2, mediaType: MediaType.ociManifest, config, layers: [layer] });
  return { manifest, config, layer };
}

test('store: an image becomes a Docker manifest over the same config and layer blobs; twice gives the same blob', async () => {
  const img = await ociImage('one');
  const ctl = new AbortController();
  const docker = await toDockerMediaTypes(blobs, img.manifest, ctl.signal);
  assert.is(docker.mediaType, MediaType.dockerManifest);
  assert.is.not(docker.digest, img.manifest.digest);
  const read = await readImage(blobs, docker);
  assert.is(read.manifestDescriptor.mediaType, MediaType.dockerManifest);
  assert.equal(read.configDescriptor, { mediaType: MediaType.dockerConfig, size: img.config.size, digest: img.config.digest });
  assert.equal(read.layers, [{ mediaType: MediaType.dockerLayerGzip, size: img.layer.size, digest: img.layer.digest }]);
  assert.equal(await toDockerMediaTypes(blobs, img.manifest, ctl.signal), docker);
  // Converting the converted image changes nothing.
  assert.equal(await toDockerMediaTypes(blobs, docker, ctl.signal), docker);
});

test('store: an index becomes a manifest list of converted manifests, platforms kept', async () => {
  const amd = await ociImage('amd');
  const arm = await ociImage('arm');
  const index = await put(MediaType.ociIndex, {
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: [
      { ...amd.manifest, platform: { os: 'linux', architecture: 'amd64' } },
      { ...arm.manifest, platform: { os: 'linux', architecture: 'arm64' } },
    ],
  });
  const list = await toDockerMediaTypes(blobs, index, new AbortController().signal);
  assert.is(list.mediaType, MediaType.dockerManifestList);
  const doc = await blobs.readJson<{ mediaType: string; manifests: (Descriptor & { platform: unknown })[] }>(list.digest);
  assert.is(doc.mediaType, MediaType.dockerManifestList);
  assert.equal(doc.manifests.map((m) => [m.mediaType, m.platform]), [
    [MediaType.dockerManifest, { os: 'linux', architecture: 'amd64' }],
    [MediaType.dockerManifest, { os: 'linux', architecture: 'arm64' }],
  ]);
  const armRead = await readImage(blobs, list, { os: 'linux', architecture: 'arm64' });
  assert.is(armRead.layers[0]!.digest, arm.layer.digest);
  assert.is(armRead.manifestDescriptor.digest, doc.manifests[1]!.digest);
});

test('store: an index with an attestation manifest is refused, as BuildKit, and nothing is written', async () => {
  const img = await ociImage('img');
  const att = await ociImage('att');
  const index = await put(MediaType.ociIndex, {
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: [
      { ...img.manifest, platform: { os: 'linux', architecture: 'amd64' } },
      { ...att.manifest, platform: { os: 'unknown', architecture: 'unknown' }, annotations: { [ATTESTATION_REF_TYPE]: ATTESTATION_MANIFEST, [ATTESTATION_REF_DIGEST]: img.manifest.digest } },
    ],
  });
  const before = await readdir(join(dir, 'l', 'blobs', 'sha256'));
  try {
    await toDockerMediaTypes(blobs, index, new AbortController().signal);
    assert.unreachable('should throw');
  } catch (e) {
    assert.instance(e, BuildError);
    assert.is((e as BuildError).code, 'USAGE');
    assert.match((e as Error).message, /cannot export attestations with "oci-mediatypes=false"/);
  }
  assert.equal((await readdir(join(dir, 'l', 'blobs', 'sha256'))).sort(), before.sort());
});

test('store: an aborted signal stops before any work', async () => {
  const img = await ociImage('x');
  const ctl = new AbortController();
  ctl.abort();
  try {
    await toDockerMediaTypes(blobs, img.manifest, ctl.signal);
    assert.unreachable('should throw');
  } catch (e) {
    assert.is((e as Error).name, 'AbortError');
  }
});

test.run();

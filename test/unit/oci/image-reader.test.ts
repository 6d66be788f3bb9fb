import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContentStore } from '../../../src/oci/content-store.js';
import { readImage } from '../../../src/oci/image-reader.js';
import { sha256 } from '../../../src/oci/digest.js';
import { hostPlatform, type Descriptor } from '../../../src/oci/image.js';
import { MediaType } from '../../../src/oci/media-types.js';
import { BuildError } from '../../../src/errors.js';

const test = suite('readImage');
let dir = '';
let blobs: ContentStore;

test.before.each(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tsbuild-ir-'));
  blobs = new ContentStore(join(dir, 'l'), join(dir, 't'));
});
test.after.each(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function put(mediaType: string, value: unknown): Promise<Descriptor> {
  const { digest, size } = await blobs.putBytes(JSON.stringify(value));
  return { mediaType, digest, size };
}

async function image(opts: { docker?: boolean; diffIds?: number } = {}): Promise<Descriptor> {
  const layer = await blobs.putBytes('fake layer');
  const config = await put(opts.docker ? MediaType.dockerConfig : MediaType.ociConfig, {
    architecture: hostPlatform().architecture,
    os: 'linux',
    rootfs: { type: 'layers', diff_ids: Array.from({ length: opts.diffIds ?? 1 }, (_, i) => sha256(`diff${i}`)) },
    config: { Env: ['A=1'] },
  });
  const mt = opts.docker ? MediaType.dockerManifest : MediaType.ociManifest;
  return put(mt, {
    schemaVersion: 2,
    mediaType: mt,
    config,
    layers: [{ mediaType: opts.docker ? MediaType.dockerLayerGzip : MediaType.ociLayerGzip, ...layer }],
  });
}

test('reads an OCI manifest with its config and layers', async () => {
  const m = await image();
  const img = await readImage(blobs, m);
  assert.is(img.manifestDescriptor.digest, m.digest);
  assert.is(img.layers.length, 1);
  assert.is(img.layers[0]!.digest, sha256('fake layer'));
  assert.equal(img.config.config?.Env, ['A=1']);
  assert.is(img.configDescriptor.mediaType, MediaType.ociConfig);
});

test('reads a Docker schema2 manifest', async () => {
  const m = await image({ docker: true });
  const img = await readImage(blobs, m);
  assert.is(img.manifestDescriptor.mediaType, MediaType.dockerManifest);
  assert.is(img.layers[0]!.mediaType, MediaType.dockerLayerGzip);
});

test('diff_ids count must match layers', async () => {
  const m = await image({ diffIds: 2 });
  try {
    await readImage(blobs, m);
    assert.unreachable();
  } catch (e) {
    assert.instance(e, BuildError);
    assert.is((e as BuildError).code, 'STORE_CORRUPT');
    assert.match((e as Error).message, /diff_ids/);
  }
});

test('an index resolves to the host platform entry; missing platform is IMAGE_NOT_FOUND', async () => {
  const host = await image();
  const other = await image({ docker: true });
  const host2 = hostPlatform();
  const idx = await put(MediaType.ociIndex, {
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: [
      { ...other, platform: { os: 'linux', architecture: host2.architecture === 'amd64' ? 's390x' : 'amd64' } },
      { ...host, platform: { os: 'linux', architecture: host2.architecture } },
    ],
  });
  const img = await readImage(blobs, idx);
  assert.is(img.manifestDescriptor.digest, host.digest);
  try {
    await readImage(blobs, idx, { os: 'windows', architecture: 'amd64' });
    assert.unreachable();
  } catch (e) {
    assert.is((e as BuildError).code, 'IMAGE_NOT_FOUND');
  }
});

test.run();

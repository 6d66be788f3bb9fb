import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { useBuildRoot } from '../helpers/build-root.js';
import { tsbuildOk } from '../helpers/cli.js';
import { tool } from '../helpers/run-tool.js';

/**
 * Issue 10 scopes 2 and 3: a build stores its layers uncompressed (the local store stays an OCI
 * layout skopeo and umoci read), outputs compress on demand and remember the result, prune
 * keeps what images need. Checked with skopeo, umoci and the store's own files.
 */
const test = suite('integration/layer-compression');
const env = useBuildRoot(test, 'compression');

type Json = Record<string, any>;
const OCI_TAR = 'application/vnd.oci.image.layer.v1.tar';
const OCI_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
// 2 MiB of data that compresses (text) in a RUN layer.
const DOCKERFILE = 'FROM busybox\nRUN i=0; while [ $i -lt 40000 ]; do echo "line $i of the layer"; i=$((i+1)); done > /data\n';
const NAME = 'docker.io/library/compress:1';

const storeBlobs = () => readdir(join(env.root, 'store/blobs/sha256'));
const blob = async (dir: string, digest: string): Promise<Json> => JSON.parse(await readFile(join(dir, 'blobs/sha256', digest.slice(7)), 'utf8')) as Json;
async function tagged(name: string): Promise<Json> {
  const index = JSON.parse(await readFile(join(env.root, 'store/index.json'), 'utf8')) as Json;
  const entry = index.manifests.find((m: Json) => m.annotations?.['org.opencontainers.image.ref.name'] === name);
  assert.ok(entry, `${name} is tagged`);
  return blob(join(env.root, 'store'), entry.digest);
}
async function archiveManifest(tar: string): Promise<{ digest: string; json: Json }> {
  const raw = await tool('skopeo', ['inspect', '--raw', `oci-archive:${tar}`]);
  const cfg = JSON.parse(await tool('skopeo', ['inspect', '--config', `oci-archive:${tar}`])) as Json;
  return { digest: JSON.parse(await tool('skopeo', ['inspect', `oci-archive:${tar}`])).Digest, json: { ...JSON.parse(raw), cfg } };
}

test('a build stores its layer uncompressed: no gzip at build time; skopeo and umoci read the store', async () => {
  const ctx = await env.context(DOCKERFILE);
  await tsbuildOk(['--root', env.root, 'build', '-t', NAME, ctx]);
  const m = await tagged(NAME);
  const config = await blob(join(env.root, 'store'), m.config.digest);
  const own = m.layers.at(-1);
  assert.is(own.mediaType, OCI_TAR);
  assert.is(own.digest, config.rootfs.diff_ids.at(-1), 'the blob is the tar itself: its digest is the diffID');
  const memo = join(env.root, 'cache/compressed-layers');
  assert.ok(!existsSync(memo) || (await readdir(memo)).length === 0, 'nothing was compressed');
  const layout = join(env.root, 'store');
  assert.is(JSON.parse(await tool('skopeo', ['inspect', '--raw', `oci:${layout}:${NAME}`])).layers.at(-1).mediaType, OCI_TAR);
  const copy = join(env.work, 'skopeo-copy');
  await tool('skopeo', ['copy', '-q', `oci:${layout}:${NAME}`, `oci:${copy}:c`]);
  const bundle = join(env.work, 'bundle');
  await tool('umoci', ['unpack', '--rootless', '--image', `${copy}:c`, bundle]);
  const data = await readFile(join(bundle, 'rootfs/data'), 'utf8');
  assert.ok(data.startsWith('line 0 of the layer\n') && data.endsWith('line 39999 of the layer\n'));
  await tool('oci-image-tool', ['validate', '--type', 'image', '--ref', `name=${NAME}`, layout]);
});

test('outputs compress on demand; a second export reuses the blob and writes nothing new; image ID unchanged', async () => {
  const ctx = await env.context(DOCKERFILE);
  const a = join(env.work, 'a.tar');
  await tsbuildOk(['--root', env.root, 'build', '-t', NAME, '--output', `type=oci,dest=${a}`, ctx]);
  const first = await archiveManifest(a);
  const own = first.json.layers.at(-1);
  assert.is(own.mediaType, OCI_GZIP);
  const stored = await tagged(NAME);
  assert.is(first.json.config.digest, stored.config.digest, 'same config: same image ID');
  const count = (await storeBlobs()).length;
  const b = join(env.work, 'b.tar');
  await tsbuildOk(['--root', env.root, 'build', '-t', NAME, '--output', `type=oci,dest=${b}`, ctx]);
  assert.is((await archiveManifest(b)).digest, first.digest, 'the same bytes again');
  assert.is((await storeBlobs()).length, count, 'the second export stored nothing');
  // `tsbuild save` and the docker archive share the remembered gzip blob too.
  const saved = join(env.work, 'saved.tar');
  await tsbuildOk(['--root', env.root, 'save', NAME, '-o', saved, '--format', 'oci']);
  assert.is(JSON.parse(await tool('skopeo', ['inspect', '--raw', `oci-archive:${saved}`])).layers.at(-1).digest, own.digest);
  assert.is((await storeBlobs()).length, count);
  const bundle = join(env.work, 'bundle-a');
  const unpacked = join(env.work, 'layout-a');
  await tool('skopeo', ['copy', '-q', `oci-archive:${a}`, `oci:${unpacked}:a`]);
  await tool('umoci', ['unpack', '--rootless', '--image', `${unpacked}:a`, bundle]);
  assert.ok((await readFile(join(bundle, 'rootfs/data'), 'utf8')).endsWith('line 39999 of the layer\n'));
});

test('prune keeps a remembered blob while its image lives, and sweeps it with the image', async () => {
  const ctx = await env.context(DOCKERFILE);
  const a = join(env.work, 'p.tar');
  await tsbuildOk(['--root', env.root, 'build', '-t', NAME, '--output', `type=oci,dest=${a}`, ctx]);
  const gz = (await archiveManifest(a)).json.layers.at(-1).digest.slice(7) as string;
  await tsbuildOk(['--root', env.root, 'prune', '--all']);
  assert.ok((await storeBlobs()).includes(gz), 'kept: the image holds its layer');
  await tsbuildOk(['--root', env.root, 'rmi', NAME]);
  await tsbuildOk(['--root', env.root, 'prune', '--all']);
  assert.not.ok((await storeBlobs()).includes(gz), 'swept with the layer');
  const memo = join(env.root, 'cache/compressed-layers');
  for (const f of existsSync(memo) ? await readdir(memo) : []) {
    const m = JSON.parse(await readFile(join(memo, f), 'utf8')) as Json;
    assert.is.not(m.digest.slice(7), gz, 'its memo entry went too');
  }
});

test.run();

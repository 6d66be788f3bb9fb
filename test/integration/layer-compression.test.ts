import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { useBuildRoot } from '../helpers/build-root.js';
import { tsbuild, tsbuildOk } from '../helpers/cli.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { sha256 } from '../../src/oci/digest.js';
import { tool } from '../helpers/run-tool.js';

/**
 * Issue 10 scopes 2 and 3: a build stores its layers uncompressed (the local store stays an OCI
 * layout skopeo and umoci read), outputs compress on demand and remember the result, prune
 * keeps what images need. Checked with skopeo, umoci and the store's own files.
 */
const test = suite('integration/layer-compression');
const env = useBuildRoot(test, 'compression');
let reg: TestRegistry;
test.before(async () => {
  reg = await startRegistry();
  // For the empty roots: the base image from the registry (pushed gzip, as `tsbuild push` does).
  await tsbuildOk(['--root', env.root, 'push', 'busybox', `${reg.host}/base/busybox:1`]);
});
test.after(async () => {
  await reg?.stop();
});

type Json = Record<string, any>;
const OCI_TAR = 'application/vnd.oci.image.layer.v1.tar';
const OCI_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
const OCI_ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd';
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
  for (const f of existsSync(memo) ? await readdir(memo) : []) {
    assert.is.not((JSON.parse(await readFile(join(memo, f), 'utf8')) as Json).source, own.digest, 'the build compressed nothing of its own');
  }
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

/** The OCI layout `dir`'s only image: manifest, config and the raw layer blobs. */
async function layoutImage(dir: string): Promise<{ manifest: Json; config: Json; layer: (i: number) => Promise<Buffer> }> {
  const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as Json;
  const manifest = await blob(dir, index.manifests[0].digest);
  return { manifest, config: await blob(dir, manifest.config.digest), layer: (i) => readFile(join(dir, 'blobs/sha256', manifest.layers[i].digest.slice(7))) };
}

test('compression=zstd: zstd layers skopeo copies, that unpack to their diff_ids; the same bytes when made again', async () => {
  const ctx = await env.context(DOCKERFILE);
  const out = join(env.work, 'zstd-layout');
  await tsbuildOk(['--root', env.root, 'build', '-t', NAME, '--output', `type=oci,dest=${out},tar=false,compression=zstd`, ctx]);
  const img = await layoutImage(out);
  assert.equal(img.manifest.layers.map((l: Json) => l.mediaType), img.manifest.layers.map(() => OCI_ZSTD), 'every layer (the base was stored uncompressed too)');
  for (const [i, id] of img.config.rootfs.diff_ids.entries()) {
    const tar = execFileSync('zstd', ['-dc'], { input: await img.layer(i), maxBuffer: 64 << 20 });
    assert.is(sha256(tar), id, `layer ${i} unpacks to its diff_id (checked by zstd(1))`);
  }
  await tool('skopeo', ['copy', '-q', `oci:${out}`, `oci:${join(env.work, 'zstd-copy')}:z`]);
  // Made again from nothing (the memo and the blob removed): the same bytes.
  const first = img.manifest.layers.at(-1).digest as string;
  await rm(join(env.root, 'cache/compressed-layers'), { recursive: true, force: true });
  await rm(join(env.root, 'store/blobs/sha256', first.slice(7)));
  const again = join(env.work, 'zstd-again');
  await tsbuildOk(['--root', env.root, 'build', '-t', NAME, '--output', `type=oci,dest=${again},tar=false,compression=zstd`, ctx]);
  assert.is((await layoutImage(again)).manifest.layers.at(-1).digest, first);
  // compression=uncompressed: the stored tar as it is; compression-level=9 gzip: another blob of the same tar.
  const plain = join(env.work, 'plain');
  await tsbuildOk(['--root', env.root, 'build', '-t', NAME, '--output', `type=oci,dest=${plain},tar=false,compression=uncompressed`, ctx]);
  assert.equal((await layoutImage(plain)).manifest.layers.at(-1), (await tagged(NAME)).layers.at(-1));
});

test('a zstd image round trip through a registry: pushed zstd, pulled and unpacked in an empty root', async () => {
  const ctx = await env.context(DOCKERFILE);
  const ref = `${reg.host}/zstd/app:1`;
  await tsbuildOk(['--root', env.root, 'build', '-t', NAME, '--output', `type=registry,name=${ref},compression=zstd,compression-level=19`, ctx]);
  const raw = JSON.parse(await tool('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`])) as Json;
  assert.ok(raw.layers.every((l: Json) => l.mediaType === OCI_ZSTD), JSON.stringify(raw.layers));
  const fresh = await mkdtemp(join(env.work, 'fresh-'));
  const next = await env.context(`FROM ${ref}\nRUN tail -n 1 /data > /last\n`);
  const out = join(env.work, 'pulled');
  await tsbuildOk(['--root', fresh, 'build', '--output', `type=local,dest=${out}`, next]);
  assert.is(await readFile(join(out, 'last'), 'utf8'), 'line 39999 of the layer\n');
  // A base pulled as zstd stays zstd in a gzip output without force-compression; with it, all is gzip.
  const keep = join(env.work, 'keep');
  await tsbuildOk(['--root', fresh, 'build', '--output', `type=oci,dest=${keep},tar=false`, next]);
  const kept = (await layoutImage(keep)).manifest.layers.map((l: Json) => l.mediaType);
  assert.equal(kept, [...raw.layers.map(() => OCI_ZSTD), OCI_GZIP]);
  const forced = join(env.work, 'forced');
  await tsbuildOk(['--root', fresh, 'build', '--output', `type=oci,dest=${forced},tar=false,force-compression=true`, next]);
  const f = await layoutImage(forced);
  assert.equal(f.manifest.layers.map((l: Json) => l.mediaType), kept.map(() => OCI_GZIP));
  assert.equal(f.config.rootfs.diff_ids, (await layoutImage(keep)).config.rootfs.diff_ids, 'same content, same image ID');
  await tool('skopeo', ['copy', '-q', `oci:${forced}`, `oci:${join(env.work, 'forced-copy')}:f`]);
  await tool('umoci', ['unpack', '--rootless', '--image', `${join(env.work, 'forced-copy')}:f`, join(env.work, 'forced-bundle')]);
  assert.is(await readFile(join(env.work, 'forced-bundle/rootfs/last'), 'utf8'), 'line 39999 of the layer\n');
});

test('--cache-to with compression=zstd: a zstd cache an empty root builds from', async () => {
  const df = `FROM ${reg.host}/base/busybox:1\n${DOCKERFILE.split('\n')[1]}\nRUN wc -l /data > /count\n`;
  const ctx = await env.context(df);
  const dir = join(env.work, 'zstd-cache');
  await tsbuildOk(['--root', env.root, 'build', '--cache-to', `type=local,dest=${dir},compression=zstd`, ctx]);
  const cache = await layoutImage(dir);
  assert.ok(cache.manifest.layers.length > 0 && cache.manifest.layers.every((l: Json) => l.mediaType === OCI_ZSTD), JSON.stringify(cache.manifest.layers));
  const fresh = await mkdtemp(join(env.work, 'fresh-cache-'));
  const r = await tsbuildOk(['--root', fresh, 'build', '--progress', 'plain', '--cache-from', `type=local,src=${dir}`, '--output', `type=local,dest=${join(env.work, 'from-cache')}`, await env.context(df)]);
  assert.match(r.stderr, /CACHED/, 'the steps came from the cache');
  assert.match(await readFile(join(env.work, 'from-cache/count'), 'utf8'), /^40000 \/data/);
});

test('push and save take buildah\'s --compression-format, --compression-level and --force-compression', async () => {
  const ctx = await env.context(DOCKERFILE);
  await tsbuildOk(['--root', env.root, 'build', '-t', NAME, ctx]);
  const config = await blob(join(env.root, 'store'), (await tagged(NAME)).config.digest);
  const ref = `${reg.host}/push/zstd:1`;
  await tsbuildOk(['--root', env.root, 'push', '--compression-format', 'zstd', '--compression-level', '19', NAME, ref]);
  const raw = JSON.parse(await tool('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`])) as Json;
  assert.equal(raw.layers.map((l: Json) => l.mediaType), raw.layers.map(() => OCI_ZSTD), 'every layer pushed zstd');
  const copy = join(env.work, 'pushed-zstd');
  await tool('skopeo', ['copy', '-q', '--src-tls-verify=false', `docker://${ref}`, `oci:${copy}:p`]);
  const pushed = await layoutImage(copy);
  assert.equal(pushed.config.rootfs.diff_ids, config.rootfs.diff_ids, 'the same image content');
  for (const [i, id] of pushed.config.rootfs.diff_ids.entries()) {
    assert.is(sha256(execFileSync('zstd', ['-dc'], { input: await pushed.layer(i), maxBuffer: 64 << 20 })), id, `layer ${i} unpacks to its diff_id`);
  }
  const plain = join(env.work, 'saved-plain.tar');
  await tsbuildOk(['--root', env.root, 'save', '--format', 'oci', '--compression-format', 'uncompressed', NAME, '-o', plain]);
  assert.equal((await archiveManifest(plain)).json.layers.map((l: Json) => l.mediaType), raw.layers.map(() => OCI_TAR));
  // A base pulled as gzip stays gzip in a zstd archive, as in a build's outputs, unless forced.
  const fresh = await mkdtemp(join(env.work, 'fresh-save-'));
  await tsbuildOk(['--root', fresh, 'build', '-t', NAME, await env.context(`FROM ${reg.host}/base/busybox:1\nRUN echo own > /own\n`)]);
  const kept = join(env.work, 'saved-kept.tar');
  await tsbuildOk(['--root', fresh, 'save', '--format', 'oci', '--compression-format', 'zstd', NAME, '-o', kept]);
  const k = await archiveManifest(kept);
  assert.equal(k.json.layers.map((l: Json) => l.mediaType), [...k.json.layers.slice(1).map(() => OCI_GZIP), OCI_ZSTD]);
  const forced = join(env.work, 'saved-forced.tar');
  await tsbuildOk(['--root', fresh, 'save', '--format', 'oci', '--compression-format', 'zstd', '--force-compression', NAME, '-o', forced]);
  const f = await archiveManifest(forced);
  assert.equal(f.json.layers.map((l: Json) => l.mediaType), k.json.layers.map(() => OCI_ZSTD));
  assert.is(f.json.cfg.rootfs.diff_ids.join(), k.json.cfg.rootfs.diff_ids.join(), 'same content, same image ID');
  await tool('skopeo', ['copy', '-q', `oci-archive:${forced}`, `oci:${join(env.work, 'forced-save-copy')}:f`]);
  for (const [args, re] of [
    [['push', '--compression-format', 'lz4', NAME, `${reg.host}/push/bad:1`], /--compression-format "lz4": expected gzip, zstd or uncompressed/],
    [['save', '--compression-level', '12', NAME, '-o', join(env.work, 'bad.tar')], /--compression-level "12": expected an integer from 0 to 9 for gzip/],
  ] as const) {
    const r = await tsbuild(['--root', env.root, ...args]);
    assert.is(r.code, 2, r.stderr);
    assert.match(r.stderr, re);
  }
  assert.not.ok(existsSync(join(env.work, 'bad.tar')), 'nothing written for a bad flag');
});

test('bad compression options are usage errors naming the flag and the key', async () => {
  const ctx = await env.context(DOCKERFILE);
  for (const [spec, re] of [
    ['type=oci,dest=x.tar,compression=lz4', /--output "type=oci,dest=x.tar,compression=lz4": compression="lz4": expected gzip, zstd or uncompressed/],
    ['type=docker,dest=x.tar,compression=zstd,compression-level=30', /compression-level="30": expected an integer from 0 to 22 for zstd/],
    ['type=registry,name=r/x,force-compression=maybe', /force-compression="maybe"/],
  ] as const) {
    const r = await tsbuild(['--root', env.root, 'build', '--output', spec, ctx]);
    assert.is(r.code, 2, r.stderr);
    assert.match(r.stderr, re);
  }
  const c = await tsbuild(['--root', env.root, 'build', '--cache-to', 'type=local,dest=/tmp/x,compression=brotli', ctx]);
  assert.is(c.code, 2, c.stderr);
  assert.match(c.stderr, /--cache-to "type=local,dest=\/tmp\/x,compression=brotli": compression="brotli"/);
});

test.run();

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { nullSink } from '../../../src/events.js';
import type { Ctx } from '../../../src/ctx.js';
import { sha256 } from '../../../src/oci/digest.js';
import { hostPlatform, type Descriptor, type ImageConfig } from '../../../src/oci/image.js';
import { ImageLayout } from '../../../src/oci/image-layout.js';
import { readImage } from '../../../src/oci/image-reader.js';
import { MediaType } from '../../../src/oci/media-types.js';
import { parseReference } from '../../../src/oci/reference.js';
import { DockerConfigCredentials } from '../../../src/remote/credentials.js';
import { pullImage } from '../../../src/remote/pull.js';
import { pushImage } from '../../../src/remote/push.js';
import { RegistryClient } from '../../../src/remote/registry-client.js';
import { RegistryError } from '../../../src/remote/registry-error.js';
import { registryBlobPath, startDroppingProxy, startRegistry, startTokenServer, type TestRegistry } from '../../helpers/registry.js';
import { tool } from '../../helpers/run-tool.js';

const pexec = promisify(execFile);
const ctx: Ctx = { signal: new AbortController().signal, events: nullSink };
const fastRetry = { attempts: 3, baseDelayMs: 20, maxDelayMs: 200 };

let work = '';
let reg: TestRegistry;
let src: ImageLayout;
let image: Descriptor;

/** A one-layer image whose layer is `bytes` of random (incompressible) data, plus a small file. */
async function randomImage(layout: ImageLayout, bytes: number, arch = hostPlatform().architecture): Promise<Descriptor> {
  const dir = await mkdtemp(join(work, 'layer-'));
  await mkdir(join(dir, 'data'));
  await writeFile(join(dir, 'data', 'random.bin'), randomBytes(bytes));
  await writeFile(join(dir, 'data', 'arch'), arch);
  const tgz = join(work, `layer-${randomBytes(4).toString('hex')}.tar.gz`);
  await pexec('tar', ['-C', dir, '--numeric-owner', '-czf', tgz, '.']);
  const gz = await readFile(tgz);
  const layer = await layout.blobs.putBytes(gz);
  const cfg: ImageConfig = { architecture: arch, os: 'linux', config: { Cmd: ['sh'] }, rootfs: { type: 'layers', diff_ids: [sha256(gunzipSync(gz))] } };
  const c = await layout.blobs.putBytes(JSON.stringify(cfg));
  const m = await layout.blobs.putBytes(
    JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociManifest, config: { mediaType: MediaType.ociConfig, ...c }, layers: [{ mediaType: MediaType.ociLayerGzip, ...layer }] }),
  );
  return { mediaType: MediaType.ociManifest, ...m };
}

async function freshStore(): Promise<ImageLayout> {
  return ImageLayout.open(await mkdtemp(join(work, 'store-')), { create: true });
}

async function skopeoDigest(ref: string, creds?: string): Promise<string> {
  const out = await tool('skopeo', ['inspect', '--raw', '--tls-verify=false', ...(creds ? ['--creds', creds] : []), `docker://${ref}`]);
  return sha256(Buffer.from(out));
}

const test = suite('registry client against docker-registry');

test.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'tsbuild-remote-'));
  reg = await startRegistry();
  src = await ImageLayout.open(join(work, 'src'), { create: true });
  image = await randomImage(src, 300_000);
});
test.after(async () => {
  await reg?.stop();
  await rm(work, { recursive: true, force: true });
  work = '';
});

test('push, then skopeo reads the same manifest digest; pushing again uploads nothing', async () => {
  const client = new RegistryClient({ retry: fastRetry });
  try {
    const r = await pushImage(client, src.blobs, image, { domain: reg.host, path: 'team/app' }, 'v1', {}, ctx);
    assert.is(r.descriptor.digest, image.digest);
    assert.is(r.uploaded, 2);
    assert.is(await skopeoDigest(`${reg.host}/team/app:v1`), image.digest);
    const again = await pushImage(client, src.blobs, image, { domain: reg.host, path: 'team/app' }, 'v2', {}, ctx);
    assert.equal([again.uploaded, again.skipped], [0, 2]);
  } finally {
    await client.close();
  }
});

test('cross-repository mount instead of upload', async () => {
  const client = new RegistryClient({ retry: fastRetry });
  try {
    await pushImage(client, src.blobs, image, { domain: reg.host, path: 'team/app' }, 'v1', {}, ctx);
    const r = await pushImage(client, src.blobs, image, { domain: reg.host, path: 'other/copy' }, 'latest', { mountFrom: ['team/app'] }, ctx);
    assert.equal([r.mounted, r.uploaded], [2, 0]);
    assert.is(await skopeoDigest(`${reg.host}/other/copy:latest`), image.digest);
  } finally {
    await client.close();
  }
});

test('pull: image from skopeo lands verified in a fresh store; second pull downloads nothing', async () => {
  await src.tag('seed', image);
  await tool('skopeo', ['copy', '--dest-tls-verify=false', `oci:${src.dir}:seed`, `docker://${reg.host}/pulled/img:1`]);
  const store = await freshStore();
  const client = new RegistryClient({ retry: fastRetry });
  try {
    const ref = parseReference(`${reg.host}/pulled/img:1`);
    const p = await pullImage(client, ref, store.blobs, hostPlatform(), ctx);
    const got = await readImage(store.blobs, p.manifest);
    assert.is(got.layers.length, 1);
    assert.is(p.downloaded, 2);
    const again = await pullImage(client, ref, store.blobs, hostPlatform(), ctx);
    assert.is(again.downloaded, 0);
    assert.is(again.manifest.digest, p.manifest.digest);
  } finally {
    await client.close();
  }
});

test('pull: multi-arch index resolves to the requested platform', async () => {
  const other = hostPlatform().architecture === 'arm64' ? 'amd64' : 'arm64';
  const host = await randomImage(src, 1000);
  const foreign = await randomImage(src, 1000, other);
  const idx = await src.blobs.putBytes(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociIndex,
      manifests: [
        { ...foreign, platform: { os: 'linux', architecture: other } },
        { ...host, platform: { os: 'linux', architecture: hostPlatform().architecture } },
      ],
    }),
  );
  const client = new RegistryClient({ retry: fastRetry });
  try {
    const pushed = await pushImage(client, src.blobs, { mediaType: MediaType.ociIndex, ...idx }, { domain: reg.host, path: 'multi' }, 'latest', {}, ctx);
    assert.is(pushed.descriptor.digest, idx.digest);
    const store = await freshStore();
    const ref = parseReference(`${reg.host}/multi`);
    const mine = await pullImage(client, ref, store.blobs, hostPlatform(), ctx);
    assert.is(mine.manifest.digest, host.digest);
    assert.is(mine.indexDigest, idx.digest);
    const theirs = await pullImage(client, ref, store.blobs, { os: 'linux', architecture: other }, ctx);
    assert.is(theirs.manifest.digest, foreign.digest);
    const byDigest = await pullImage(client, parseReference(`${reg.host}/multi@${idx.digest}`), store.blobs, hostPlatform(), ctx);
    assert.is(byDigest.manifest.digest, host.digest);
    try {
      await pullImage(client, ref, store.blobs, { os: 'linux', architecture: 'mips64le' }, ctx);
      assert.unreachable('no such platform');
    } catch (e) {
      assert.match((e as Error).message, /no image for platform linux\/mips64le \(it has: linux\/(arm64|amd64), linux\//);
    }
  } finally {
    await client.close();
  }
});

test('pull: a blob whose bytes do not match its digest fails clearly and stores nothing', async () => {
  const bad = await randomImage(src, 5000);
  const client = new RegistryClient({ retry: fastRetry });
  try {
    await pushImage(client, src.blobs, bad, { domain: reg.host, path: 'tampered' }, 'latest', {}, ctx);
    const m = JSON.parse((await src.blobs.readBytes(bad.digest)).toString()) as { layers: Descriptor[] };
    const layer = m.layers[0]!;
    const path = registryBlobPath(reg, layer.digest);
    const orig = await readFile(path);
    const evil = Buffer.from(orig);
    evil[evil.length - 10] = evil[evil.length - 10]! ^ 0xff; // same size, different bytes
    await writeFile(path, evil);
    const store = await freshStore();
    try {
      await pullImage(client, parseReference(`${reg.host}/tampered`), store.blobs, hostPlatform(), ctx);
      assert.unreachable('pull must fail');
    } catch (e) {
      assert.instance(e, RegistryError);
      assert.match((e as Error).message, new RegExp(`pull blob ${layer.digest} from registry ${reg.host.replace(/\./g, '\\.')} repository tampered: the content does not match`));
    }
    assert.not.ok(await store.blobs.has(layer.digest), 'bad layer not stored');
    assert.not.ok(await store.blobs.has(bad.digest), 'manifest not stored');
    assert.equal(await readdir(store.blobs.tmpDir), [], 'no temp file left');
  } finally {
    await client.close();
  }
});

test('push survives a connection dropped mid-blob (resume or restart)', async () => {
  const big = await randomImage(src, 2_000_000);
  const proxy = await startDroppingProxy(reg.host, 100_000);
  const client = new RegistryClient({ retry: fastRetry, upload: { chunkSize: 256 * 1024 } });
  try {
    const r = await pushImage(client, src.blobs, big, { domain: proxy.host, path: 'dropped' }, 'latest', {}, ctx);
    assert.is(proxy.drops, 1, 'the proxy did cut a connection');
    assert.is(r.descriptor.digest, big.digest);
    assert.is(await skopeoDigest(`${reg.host}/dropped:latest`), big.digest);
    const store = await freshStore();
    const p = await pullImage(client, parseReference(`${reg.host}/dropped`), store.blobs, hostPlatform(), ctx);
    assert.is(p.downloaded, 2, 'layer content verified on the way back');
  } finally {
    await client.close();
    await proxy.stop();
  }
});

test.run();

const auth = suite('registry auth: htpasswd (basic) and bearer tokens');
let basicReg: TestRegistry;
let tokenReg: TestRegistry;
let tokens: Awaited<ReturnType<typeof startTokenServer>>;

auth.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'tsbuild-remote-auth-'));
  src = await ImageLayout.open(join(work, 'auth-src'), { create: true });
  basicReg = await startRegistry({ kind: 'htpasswd', user: 'alice', password: 's3cret' });
  tokens = await startTokenServer('bob', 'hunter2');
  tokenReg = await startRegistry({ kind: 'token', realm: tokens.realm, service: tokens.service, issuer: tokens.issuer, certFile: tokens.certFile });
});
auth.after(async () => {
  await basicReg?.stop();
  await tokenReg?.stop();
  await tokens?.stop();
  await rm(work, { recursive: true, force: true });
});

async function credsFile(host: string, user: string, password: string): Promise<DockerConfigCredentials> {
  const dir = await mkdtemp(join(work, 'docker-'));
  const path = join(dir, 'config.json');
  await writeFile(path, JSON.stringify({ auths: { [`http://${host}`]: { auth: Buffer.from(`${user}:${password}`).toString('base64') } } }));
  return new DockerConfigCredentials(path);
}

for (const kind of ['basic', 'token'] as const) {
  auth(`${kind}: push and pull with the right credentials from config.json`, async () => {
    const r = kind === 'basic' ? basicReg : tokenReg;
    const [user, pw] = kind === 'basic' ? ['alice', 's3cret'] : ['bob', 'hunter2'];
    const img = await randomImage(src, 2000);
    const client = new RegistryClient({ retry: fastRetry, credentials: await credsFile(r.host, user, pw) });
    try {
      const pushed = await pushImage(client, src.blobs, img, { domain: r.host, path: 'secure/app' }, 'latest', {}, ctx);
      assert.is(pushed.descriptor.digest, img.digest);
      assert.is(await skopeoDigest(`${r.host}/secure/app:latest`, `${user}:${pw}`), img.digest);
      const store = await freshStore();
      const p = await pullImage(client, parseReference(`${r.host}/secure/app`), store.blobs, hostPlatform(), ctx);
      assert.is(p.manifest.digest, img.digest);
    } finally {
      await client.close();
    }
    if (kind === 'token') {
      assert.ok(tokens.stats.issued >= 1);
      assert.ok(tokens.stats.scopes.includes('repository:secure/app:pull,push'), tokens.stats.scopes.join(' '));
    }
  });

  auth(`${kind}: wrong password → REGISTRY_AUTH naming the registry`, async () => {
    const r = kind === 'basic' ? basicReg : tokenReg;
    const client = new RegistryClient({ retry: fastRetry, credentials: await credsFile(r.host, 'alice', 'wrong') });
    try {
      await pullImage(client, parseReference(`${r.host}/secure/app`), (await freshStore()).blobs, hostPlatform(), ctx);
      assert.unreachable('must fail');
    } catch (e) {
      assert.instance(e, RegistryError);
      assert.is((e as RegistryError).code, 'REGISTRY_AUTH');
      assert.ok((e as Error).message.includes(r.host), (e as Error).message);
    } finally {
      await client.close();
    }
  });

  auth(`${kind}: no credentials → REGISTRY_AUTH with a login hint`, async () => {
    const r = kind === 'basic' ? basicReg : tokenReg;
    const client = new RegistryClient({ retry: fastRetry });
    try {
      await pullImage(client, parseReference(`${r.host}/secure/app`), (await freshStore()).blobs, hostPlatform(), ctx);
      assert.unreachable('must fail');
    } catch (e) {
      assert.is((e as RegistryError).code, 'REGISTRY_AUTH');
      assert.match((e as RegistryError).hint ?? '', /tsbuild login/);
    } finally {
      await client.close();
    }
  });
}

auth.run();

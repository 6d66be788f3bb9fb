import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256 } from '../../src/oci/digest.js';
import { ImageLayout } from '../../src/oci/image-layout.js';
import { useBuildRoot } from '../helpers/build-root.js';
import { tsbuild, tsbuildOk } from '../helpers/cli.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { tool } from '../helpers/run-tool.js';

const test = suite('registry: tsbuild push / pull / FROM / login against docker-registry');
const br = useBuildRoot(test, 'registry');
let reg: TestRegistry;
let basic: TestRegistry;

test.before(async () => {
  reg = await startRegistry();
  basic = await startRegistry({ kind: 'htpasswd', user: 'alice', password: 's3cret' });
});
test.after(async () => {
  await reg?.stop();
  await basic?.stop();
});

async function skopeoDigest(ref: string, creds?: string): Promise<string> {
  const out = await tool('skopeo', ['inspect', '--raw', '--tls-verify=false', ...(creds ? ['--creds', creds] : []), `docker://${ref}`]);
  return sha256(Buffer.from(out));
}

async function localDigest(root: string, name: string): Promise<string | undefined> {
  const layout = await ImageLayout.open(join(root, 'store'), { create: false });
  return (await layout.resolve(name))?.digest;
}

test('build --push: skopeo sees the digest tsbuild printed and wrote to --metadata-file', async () => {
  const ctx = await br.context('FROM busybox\nRUN echo pushed > /hello\n');
  const meta = join(br.work, 'meta.json');
  const name = `${reg.host}/team/app:1`;
  const r = await tsbuildOk(['--root', br.root, 'build', '-t', name, '--push', '--metadata-file', meta, ctx]);
  const m = JSON.parse(await readFile(meta, 'utf8')) as Record<string, string>;
  const digest = m['containerimage.digest']!;
  assert.match(r.stderr, `pushed ${name}@${digest}`);
  assert.is(await skopeoDigest(name), digest);
});

test('--output type=registry,name=… pushes too', async () => {
  const ctx = await br.context('FROM busybox\nRUN echo out > /o\n');
  const name = `${reg.host}/team/out:latest`;
  const meta = join(br.work, 'meta2.json');
  await tsbuildOk(['--root', br.root, 'build', '--output', `type=registry,name=${name}`, '--metadata-file', meta, ctx]);
  const m = JSON.parse(await readFile(meta, 'utf8')) as Record<string, string>;
  assert.is(await skopeoDigest(name), m['containerimage.digest']);
});

test('image pushed with skopeo is pulled by FROM on a fresh root; tsbuild pull; push NAME DEST', async () => {
  await tool('skopeo', ['copy', '--dest-tls-verify=false', `oci:${join(br.root, 'store')}:docker.io/library/busybox:latest`, `docker://${reg.host}/base/busybox:1`]);
  const fresh = await mkdtemp(join(br.work, 'fresh-'));
  try {
    const ctx = await br.context(`FROM ${reg.host}/base/busybox:1\nRUN echo from-registry > /x && cat /x\n`);
    const r = await tsbuildOk(['--root', fresh, 'build', '-t', 'derived', '--progress', 'plain', ctx]);
    assert.match(r.stderr, 'from-registry');
    const base = await localDigest(fresh, `${reg.host}/base/busybox:1`);
    assert.is(base, await skopeoDigest(`${reg.host}/base/busybox:1`), 'FROM tagged the pulled image under its name');

    const pulled = await tsbuildOk(['--root', fresh, 'pull', '-q', `${reg.host}/team/app:1`]);
    assert.is(pulled.stdout.trim(), await skopeoDigest(`${reg.host}/team/app:1`));

    const pushed = await tsbuildOk(['--root', fresh, 'push', '-q', 'derived', `${reg.host}/team/derived:2`]);
    assert.is(await skopeoDigest(`${reg.host}/team/derived:2`), pushed.stdout.trim());
    // The build stored its RUN layer uncompressed; the push carries it gzip, under the same image ID.
    const remote = JSON.parse(await tool('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/team/derived:2`])) as { config: { digest: string }; layers: { mediaType: string }[] };
    const local = (JSON.parse((await tsbuildOk(['--root', fresh, 'images', '--format', 'json'])).stdout) as { name: string; id: string }[]).find((i) => i.name === 'docker.io/library/derived:latest')!;
    assert.is(remote.config.digest, local.id);
    assert.equal(remote.layers.map((l) => l.mediaType), remote.layers.map(() => 'application/vnd.oci.image.layer.v1.tar+gzip'));
    // A second push finds everything there: the same digest, nothing compressed again.
    assert.is((await tsbuildOk(['--root', fresh, 'push', '-q', 'derived', `${reg.host}/team/derived:3`])).stdout.trim(), pushed.stdout.trim());

    const missing = await tsbuild(['--root', fresh, 'pull', `${reg.host}/nope:1`]);
    assert.is(missing.code, 1);
    assert.match(missing.stderr, `registry ${reg.host} repository nope`);
  } finally {
    await rm(fresh, { recursive: true, force: true });
  }
});

test('login: wrong password exits 1 with a clear message; right one saves, push works, logout removes', async () => {
  const dockerDir = await mkdtemp(join(br.work, 'docker-'));
  const env = { DOCKER_CONFIG: dockerDir };
  const wrong = await tsbuild(['login', basic.host, '-u', 'alice', '--password-stdin'], { env, input: 'nope\n' });
  assert.is(wrong.code, 1, wrong.stderr);
  assert.match(wrong.stderr, `authentication failed at registry ${basic.host}`);

  const unauth = await tsbuild(['--root', br.root, 'push', 'busybox', `${basic.host}/b/busybox:1`], { env });
  assert.is(unauth.code, 1);
  assert.match(unauth.stderr, `registry ${basic.host} requires authentication`);

  const ok = await tsbuild(['login', basic.host, '-u', 'alice', '--password-stdin'], { env, input: 's3cret\n' });
  assert.is(ok.code, 0, ok.stderr);
  const cfg = JSON.parse(await readFile(join(dockerDir, 'config.json'), 'utf8')) as { auths: Record<string, { auth: string }> };
  assert.is(Buffer.from(cfg.auths[basic.host]!.auth, 'base64').toString(), 'alice:s3cret');

  const pushed = await tsbuildOk(['--root', br.root, 'push', '-q', 'busybox', `${basic.host}/b/busybox:1`], { env });
  assert.is(await skopeoDigest(`${basic.host}/b/busybox:1`, 'alice:s3cret'), pushed.stdout.trim());

  await tsbuildOk(['logout', basic.host], { env });
  const after = JSON.parse(await readFile(join(dockerDir, 'config.json'), 'utf8')) as { auths: Record<string, unknown> };
  assert.equal(after.auths, {});
});

test.run();

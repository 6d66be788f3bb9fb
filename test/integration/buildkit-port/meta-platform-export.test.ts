import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { useBuildRoot } from '../../helpers/build-root.js';
import { tsbuild, tsbuildOk } from '../../helpers/cli.js';
import { tool } from '../../helpers/run-tool.js';

/**
 * Ports of BuildKit's frontend/dockerfile/dockerfile_platform_test.go and
 * dockerfile_export_test.go: platform args, per-platform local/tar/OCI exports, tar contexts.
 */
const test = suite('buildkit-port/meta-platform-export');
const env = useBuildRoot(test, 'bkp-meta-plat');

type Json = Record<string, any>;
const build = (args: readonly string[], opts: { input?: string } = {}) => tsbuildOk(['--root', env.root, 'build', ...args], opts);
let n = 0;
const out = (name: string) => join(env.work, `${name}-${++n}`);

/** A tar's members (`tar -tf`), and one member's content. */
const tarList = async (file: string) => (await tool('tar', ['-tf', file])).split('\n').filter(Boolean);
const tarRead = (file: string, member: string) => tool('tar', ['-xOf', file, member]);

/** An OCI layout tar's parsed JSON blob (or index.json). */
async function ociJson(file: string, member: string): Promise<Json> {
  return JSON.parse(await tarRead(file, member)) as Json;
}
const blobPath = (digest: string) => `blobs/sha256/${digest.slice('sha256:'.length)}`;

test('testPlatformArgsImplicit: FROM build-${TARGETOS} picks the stage of the target OS', async () => {
  const ctx = await env.context('FROM scratch AS build-linux\nCOPY foo bar\nFROM build-${TARGETOS}\nCOPY foo2 bar2\n', { foo: 'd0', foo2: 'd1' });
  const dest = out('implicit');
  await build(['--output', `type=local,dest=${dest}`, ctx]);
  assert.is(await readFile(join(dest, 'bar'), 'utf8'), 'd0');
  assert.is(await readFile(join(dest, 'bar2'), 'utf8'), 'd1');
});

test('testPlatformArgsExplicit: --platform darwin/ppc64le and --build-arg TARGETOS=freebsd reach a RUN on the build platform', async () => {
  const ctx = await env.context(
    'FROM --platform=$BUILDPLATFORM busybox AS build\nARG TARGETPLATFORM\nARG TARGETOS\nRUN mkdir /out && echo -n $TARGETPLATFORM > /out/platform && echo -n $TARGETOS > /out/os\nFROM scratch\nCOPY --from=build out .\n',
  );
  const dest = out('explicit');
  await build(['--platform', 'darwin/ppc64le', '--build-arg', 'TARGETOS=freebsd', '--output', `type=local,dest=${dest}`, ctx]);
  assert.is(await readFile(join(dest, 'platform'), 'utf8'), 'darwin/ppc64le');
  assert.is(await readFile(join(dest, 'os'), 'utf8'), 'freebsd');
});

test('testTarExporterBasic: type=tar holds the rootfs', async () => {
  const ctx = await env.context('FROM scratch\nCOPY foo foo\n', { foo: 'data' });
  const dest = out('tar-basic') + '.tar';
  await build(['--output', `type=tar,dest=${dest}`, ctx]);
  assert.ok((await tarList(dest)).includes('foo'));
  assert.is(await tarRead(dest, 'foo'), 'data');
});

test('testTarExporterMulti: type=tar for one platform is the rootfs, for several one directory per platform', async () => {
  const ctx = await env.context('FROM scratch AS stage-linux\nCOPY foo forlinux\n\nFROM scratch AS stage-darwin\nCOPY bar fordarwin\n\nFROM stage-$TARGETOS\n', { foo: 'data', bar: 'data2' });
  const one = out('tar-one') + '.tar';
  await build(['--output', `type=tar,dest=${one}`, ctx]);
  assert.is(await tarRead(one, 'forlinux'), 'data');
  const multi = out('tar-multi') + '.tar';
  await build(['--platform', 'linux/amd64,darwin/amd64', '--output', `type=tar,dest=${multi}`, ctx]);
  assert.is(await tarRead(multi, 'linux_amd64/forlinux'), 'data');
  assert.is(await tarRead(multi, 'darwin_amd64/fordarwin'), 'data2');
});

test('testExportMultiPlatform: type=local per platform (linux/arm is arm/v7), and an OCI index in --platform order with a label and one layer each', async () => {
  const ctx = await env.context('FROM scratch\nARG TARGETARCH\nARG TARGETPLATFORM\nLABEL target=$TARGETPLATFORM\nCOPY arch-$TARGETARCH whoami\n', {
    'arch-arm': 'i am arm',
    'arch-amd64': 'i am amd64',
    'arch-s390x': 'i am s390x',
    'arch-ppc64le': 'i am ppc64le',
  });
  const dest = out('multi-local');
  await build(['--platform', 'windows/amd64,linux/arm,linux/s390x', '--output', `type=local,dest=${dest}`, ctx]);
  assert.is(await readFile(join(dest, 'windows_amd64/whoami'), 'utf8'), 'i am amd64');
  assert.is(await readFile(join(dest, 'linux_arm_v7/whoami'), 'utf8'), 'i am arm');
  assert.is(await readFile(join(dest, 'linux_s390x/whoami'), 'utf8'), 'i am s390x');

  // platform-split=false (BuildKit's local exporter option): one directory; a file two platforms share is refused.
  const merged = out('multi-merged');
  const r = await tsbuild(['--root', env.root, 'build', '--platform', 'linux/arm,linux/s390x', '--output', `type=local,dest=${merged},platform-split=false`, ctx]);
  assert.is(r.code, 2, r.stderr);
  assert.match(r.stderr, 'cannot overwrite whoami from linux/arm/v7 with linux/s390x when split option is disabled');

  const tar = out('multi-oci') + '.tar';
  await build(['--platform', 'windows/amd64,linux/arm/v6,linux/ppc64le', '--output', `type=oci,dest=${tar}`, ctx]);
  const top = await ociJson(tar, 'index.json');
  const index = await ociJson(tar, blobPath(top.manifests[0].digest));
  assert.is(index.manifests.length, 3);
  const expected = [
    { p: 'windows/amd64', os: 'windows', arch: 'amd64', dt: 'i am amd64' },
    { p: 'linux/arm/v6', os: 'linux', arch: 'arm', dt: 'i am arm' },
    { p: 'linux/ppc64le', os: 'linux', arch: 'ppc64le', dt: 'i am ppc64le' },
  ];
  for (const [i, exp] of expected.entries()) {
    const p = index.manifests[i].platform;
    assert.is([p.os, p.architecture, p.variant].filter(Boolean).join('/'), exp.p);
    const manifest = await ociJson(tar, blobPath(index.manifests[i].digest));
    assert.is(manifest.layers.length, 1);
    const layerFile = out('layer') + '.tar.gz';
    await writeFile(layerFile, await toolBuffer('tar', ['-xOf', tar, blobPath(manifest.layers[0].digest)]));
    assert.is(await tool('tar', ['-xzOf', layerFile, 'whoami']), exp.dt);
    const config = await ociJson(tar, blobPath(manifest.config.digest));
    assert.is(config.os, exp.os);
    assert.is(config.architecture, exp.arch);
    assert.is(config.config.Labels.target, exp.p);
  }
});

test('testTarContext: a tar on standard input is the context (Dockerfile inside)', async () => {
  const dir = await env.context('FROM scratch\nCOPY foo /', { foo: 'contents' });
  const tar = out('ctx') + '.tar';
  await tool('tar', ['-C', dir, '-cf', tar, 'Dockerfile', 'foo']);
  const dest = out('tar-ctx');
  await build(['--output', `type=local,dest=${dest}`, '-'], { input: await readFile(tar, 'latin1') });
  assert.is(await readFile(join(dest, 'foo'), 'utf8'), 'contents');
});

test.run();

async function toolBuffer(cmd: string, args: readonly string[]): Promise<Buffer> {
  const { spawnSync } = await import('node:child_process');
  const r = spawnSync(cmd, args, { maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

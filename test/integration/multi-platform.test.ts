import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { useBuildRoot } from '../helpers/build-root.js';
import { tsbuild, tsbuildOk } from '../helpers/cli.js';
import { cached, rawjsonEvents, started } from '../helpers/progress-events.js';
import { useRegistry } from '../helpers/registry.js';
import { tool } from '../helpers/run-tool.js';

/**
 * Cross-platform and multi-platform builds without emulation: build steps run on the build
 * platform (FROM --platform=$BUILDPLATFORM), the target stages only COPY. Outputs are checked
 * with skopeo and umoci; the index is pushed to a real registry.
 */
const test = suite('integration/multi-platform');
const env = useBuildRoot(test, 'multiplat');
const reg = useRegistry(test);

// Declared ARGs are part of a RUN's environment: the RUN before them is the same step for every
// target platform, the one after them is not.
const CROSS = `FROM --platform=$BUILDPLATFORM busybox AS build
RUN echo shared > /shared
ARG TARGETPLATFORM BUILDPLATFORM
RUN echo "built on $BUILDPLATFORM for $TARGETPLATFORM" > /out.txt
FROM scratch
ARG TARGETARCH
COPY --from=build /out.txt /out.txt
COPY --from=build /shared /shared
LABEL arch=$TARGETARCH
`;

test('two platforms: one OCI index in --platform order, each image for its platform, shared steps run once', async () => {
  const ctx = await env.context(CROSS);
  const out = join(env.work, 'multi.tar');
  const meta = join(env.work, 'multi-meta.json');
  const r = await tsbuildOk(['--root', env.root, 'build', '--progress', 'rawjson', '--platform', 'linux/arm64,linux/amd64', '-t', 'multi:1', '--metadata-file', meta, '--output', `type=oci,dest=${out}`, ctx]);
  const ran = started(rawjsonEvents(r.stderr));
  assert.is(ran.filter((n) => n.includes('RUN echo shared')).length, 1, `the shared RUN ran once: ${ran.join('\n')}`);
  assert.is(ran.filter((n) => n.includes('RUN echo "built on')).length, 2, 'the RUN using TARGETPLATFORM ran per platform');
  assert.ok(ran.some((n) => n.startsWith('[linux/arm64 build ')), 'steps are named with their platform');

  const index = JSON.parse(await tool('skopeo', ['inspect', '--raw', `oci-archive:${out}`])) as { mediaType: string; manifests: { platform: { architecture: string } }[] };
  assert.is(index.mediaType, 'application/vnd.oci.image.index.v1+json');
  assert.equal(index.manifests.map((m) => m.platform.architecture), ['arm64', 'amd64']);
  const metadata = JSON.parse(await readFile(meta, 'utf8')) as Record<string, unknown>;
  assert.not.ok('containerimage.config.digest' in metadata, 'an index has no single config');

  for (const arch of ['arm64', 'amd64']) {
    const inspected = JSON.parse(await tool('skopeo', ['inspect', '--override-arch', arch, `oci-archive:${out}`])) as { Architecture: string; Labels: Record<string, string> };
    assert.is(inspected.Architecture, arch);
    assert.is(inspected.Labels.arch, arch);
    const layout = join(env.work, `layout-${arch}`);
    await tool('skopeo', ['copy', '--override-arch', arch, `oci-archive:${out}`, `oci:${layout}:img`]);
    const bundle = join(env.work, `bundle-${arch}`);
    await tool('umoci', ['unpack', '--rootless', '--image', `${layout}:img`, bundle]);
    assert.is(await readFile(join(bundle, 'rootfs', 'out.txt'), 'utf8'), `built on linux/amd64 for linux/${arch}\n`);
  }

  // type=local writes one directory per platform, as BuildKit does.
  const local = join(env.work, 'multi-local');
  await tsbuildOk(['--root', env.root, 'build', '--platform', 'linux/arm64,linux/amd64', '--output', `type=local,dest=${local}`, ctx]);
  assert.is(await readFile(join(local, 'linux_arm64', 'out.txt'), 'utf8'), 'built on linux/amd64 for linux/arm64\n');
  assert.is(await readFile(join(local, 'linux_amd64', 'out.txt'), 'utf8'), 'built on linux/amd64 for linux/amd64\n');
  // type=tar too: one archive, a directory per platform.
  const rootfsTar = join(env.work, 'multi-rootfs.tar');
  await tsbuildOk(['--root', env.root, 'build', '--platform', 'linux/arm64,linux/amd64', '--output', `type=tar,dest=${rootfsTar}`, ctx]);
  assert.equal((await tool('tar', ['-tf', rootfsTar])).trim().split('\n').sort(), ['linux_amd64/', 'linux_amd64/out.txt', 'linux_amd64/shared', 'linux_arm64/', 'linux_arm64/out.txt', 'linux_arm64/shared']);
  assert.is(await tool('tar', ['-xOf', rootfsTar, 'linux_arm64/out.txt']), 'built on linux/amd64 for linux/arm64\n');

  // The tag names the index; `images` lists it and FROM picks the host's image from it.
  assert.match((await tsbuildOk(['--root', env.root, 'images'])).stdout, /multi\s+1/);
  // save (OCI) keeps the whole index; load on another root takes it whole.
  const saved = join(env.work, 'multi-saved.tar');
  await tsbuildOk(['--root', env.root, 'save', '--format', 'oci', '-o', saved, 'multi:1']);
  const savedIndex = JSON.parse(await tool('skopeo', ['inspect', '--raw', `oci-archive:${saved}`])) as { manifests: unknown[] };
  assert.is(savedIndex.manifests.length, 2);
  const other = join(env.work, 'other-root');
  await tsbuildOk(['--root', other, 'load', '-i', saved]);
  assert.match((await tsbuildOk(['--root', other, 'images'])).stdout, /multi\s+1/);
  const child = await env.context('FROM multi:1\n');
  const childOut = join(env.work, 'child-local');
  await tsbuildOk(['--root', env.root, 'build', '--output', `type=local,dest=${childOut}`, child]);
  assert.is(await readFile(join(childOut, 'out.txt'), 'utf8'), 'built on linux/amd64 for linux/amd64\n');
});

test('--push sends the index and both images to a registry', async () => {
  const ctx = await env.context(CROSS);
  const name = `${reg.host}/cross/app:1`;
  const meta = join(env.work, 'push-meta.json');
  await tsbuildOk(['--root', env.root, 'build', '--platform', 'linux/amd64,linux/arm64', '-t', name, '--push', '--metadata-file', meta, ctx]);
  const raw = await tool('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${name}`]);
  const index = JSON.parse(raw) as { manifests: { platform: { architecture: string } }[] };
  assert.equal(index.manifests.map((m) => m.platform.architecture), ['amd64', 'arm64']);
  const digest = (JSON.parse(await readFile(meta, 'utf8')) as Record<string, string>)['containerimage.digest'];
  assert.is(JSON.parse(await tool('skopeo', ['inspect', '--tls-verify=false', `docker://${name}`])).Digest, digest);
  const arm = JSON.parse(await tool('skopeo', ['inspect', '--tls-verify=false', '--override-arch', 'arm64', `docker://${name}`])) as { Architecture: string };
  assert.is(arm.Architecture, 'arm64');
});

test('--cache-to type=inline on a multi-platform image: --cache-from reads every platform\'s cache from the index', async () => {
  const ctx = await env.context(CROSS.replace('LABEL arch', 'LABEL inline=1 arch'));
  const name = `${reg.host}/cross/inline:1`;
  await tsbuildOk(['--root', env.root, 'build', '--platform', 'linux/amd64,linux/arm64', '-t', name, '--cache-to', 'type=inline', '--push', ctx]);
  await tsbuildOk(['--root', env.root, 'prune', '--all']);
  const r = await tsbuildOk(['--root', env.root, 'build', '--progress', 'rawjson', '--platform', 'linux/amd64,linux/arm64', '--cache-from', name, ctx]);
  const ev = rawjsonEvents(r.stderr);
  assert.not.ok(r.stderr.includes('cache not used'), r.stderr);
  // mode=min holds the final stages' steps: the build stage runs again, and the COPYs from it
  // are found in the imported cache by the content they copy, for both platforms.
  const copies = cached(ev).filter((n) => n.includes('COPY --from=build'));
  assert.is(copies.length, 4, `cached: ${cached(ev).join('\n')}`);
});

test('a RUN for a platform this machine cannot execute, a docker output of several platforms, and a bad --platform are clear errors', async () => {
  const run = await tsbuild(['--root', env.root, 'build', '--platform', 'linux/s390x', await env.context('FROM scratch\nCOPY Dockerfile /\nRUN echo no\n')]);
  assert.is(run.code, 1);
  assert.match(run.stderr, /Dockerfile:3: RUN for linux\/s390x can't execute here/);
  assert.match(run.stderr, /FROM --platform=\$BUILDPLATFORM/);
  const base = await tsbuild(['--root', env.root, 'build', '--platform', 'linux/s390x', await env.context('FROM busybox\n')]);
  assert.is(base.code, 1);
  assert.match(base.stderr, /Dockerfile:1: image busybox .* is linux\/amd64, not linux\/s390x/);
  const docker = await tsbuild(['--root', env.root, 'build', '--platform', 'linux/amd64,linux/arm64', '--output', `type=docker,dest=${join(env.work, 'x.tar')}`, await env.context(CROSS)]);
  assert.is(docker.code, 2);
  assert.match(docker.stderr, /type=docker: a docker archive holds one platform/);
  const bad = await tsbuild(['--root', env.root, 'build', '--platform', 'linux', await env.context(CROSS)]);
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /--platform linux: invalid platform "linux": expected os\/arch/);
});

test.run();

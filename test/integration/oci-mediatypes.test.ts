import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256 } from '../../src/oci/digest.js';
import { useBuildRoot } from '../helpers/build-root.js';
import { tsbuild, tsbuildOk } from '../helpers/cli.js';
import { mountsUnder } from '../helpers/mounts.js';
import { throwawayPodman, type ThrowawayPodman } from '../helpers/podman.js';
import { useRegistry } from '../helpers/registry.js';
import { tool } from '../helpers/run-tool.js';

/**
 * `--output …,oci-mediatypes=true|false` (BuildKit's key): Docker's schema2 media types where
 * asked for and, by default, in the docker archive, so podman keeps the Healthcheck it reads only
 * from Docker-typed images. Checked with skopeo (archives, layouts, a real registry) and podman
 * (load, pull) on a private throw-away storage.
 */
const test = suite('integration/oci-mediatypes');
const env = useBuildRoot(test, 'mediatypes');
const reg = useRegistry(test);
let podman: ThrowawayPodman;

test.before(async () => {
  podman = await throwawayPodman();
});
test.after(async () => {
  await podman?.dispose();
});

type Json = Record<string, any>;

const DOCKER = {
  manifest: 'application/vnd.docker.distribution.manifest.v2+json',
  list: 'application/vnd.docker.distribution.manifest.list.v2+json',
  config: 'application/vnd.docker.container.image.v1+json',
  layer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
};
const OCI = {
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  index: 'application/vnd.oci.image.index.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar+gzip',
};
const HEALTHCHECK = { Test: ['CMD-SHELL', 'true'], Interval: 5_000_000_000 };
const SHELL = ['/bin/sh', '-ec'];
const DOCKERFILE = `FROM busybox\nSHELL ${JSON.stringify(SHELL)}\nHEALTHCHECK --interval=5s CMD true\nRUN echo hi > /hi\n`;

interface Built {
  /** The stored (OCI) manifest and the image's config digest, from --metadata-file. */
  readonly stored: Json;
  readonly config: string;
  readonly stderr: string;
}

async function build(outputs: readonly string[], extra: readonly string[] = []): Promise<Built> {
  const ctx = await env.context(DOCKERFILE);
  const meta = join(env.work, 'meta.json');
  const r = await tsbuildOk(['--root', env.root, 'build', '-t', 'hc:1', '--metadata-file', meta, ...extra, ...outputs.flatMap((o) => ['--output', o]), ctx]);
  const m = JSON.parse(await readFile(meta, 'utf8')) as Record<string, string>;
  const stored = JSON.parse(await readFile(join(env.root, 'store/blobs/sha256', m['containerimage.digest']!.slice(7)), 'utf8')) as Json;
  return { stored, config: m['containerimage.config.digest']!, stderr: r.stderr };
}

/** The raw manifest (or index) skopeo reads at `ref`, and its digest. */
async function raw(ref: string): Promise<{ json: Json; digest: string }> {
  const out = await tool('skopeo', ['inspect', '--raw', '--tls-verify=false', ref]);
  return { json: JSON.parse(out) as Json, digest: sha256(Buffer.from(out)) };
}

/** `m` has Docker's types throughout, and the same config and layer blobs as the stored image. */
function assertDockerImage(m: Json, built: Built): void {
  assert.is(m.mediaType, DOCKER.manifest);
  assert.is(m.schemaVersion, 2);
  assert.equal(m.config, { mediaType: DOCKER.config, size: built.stored.config.size, digest: built.config });
  assert.equal(
    m.layers.map((l: Json) => [l.mediaType, l.digest, l.size]),
    built.stored.layers.map((l: Json) => [DOCKER.layer, l.digest, l.size]),
    'same layer blobs, Docker-typed: nothing recompressed',
  );
  assert.is(m.annotations, undefined);
}

function assertOciImage(m: Json, built: Built): void {
  assert.is(m.mediaType, OCI.manifest);
  assert.is(m.config.mediaType, OCI.config);
  assert.is(m.config.digest, built.config);
  assert.equal(m.layers.map((l: Json) => l.mediaType), built.stored.layers.map(() => OCI.layer));
}

test('type=docker: Docker media types by default and with oci-mediatypes=false (same bytes); podman load keeps the Healthcheck', async () => {
  const dflt = join(env.work, 'default.tar');
  const explicit = join(env.work, 'explicit.tar');
  const built = await build([`type=docker,dest=${dflt}`, `type=docker,dest=${explicit},oci-mediatypes=false`]);
  assertOciImage(built.stored, built); // the store keeps OCI types: the conversion is export-time only
  // The archive is also an OCI layout (as docker 25's save): skopeo's oci-archive reader shows the manifest index.json names.
  const inArchive = await raw(`oci-archive:${dflt}`);
  assertDockerImage(inArchive.json, built);
  assert.is((await raw(`oci-archive:${explicit}`)).digest, inArchive.digest, 'default and explicit false write the same manifest');
  const index = JSON.parse(await tool('tar', ['-xOf', dflt, 'index.json'])) as Json;
  assert.equal(index.manifests.map((m: Json) => [m.mediaType, m.digest]), [[DOCKER.manifest, inArchive.digest]]);
  // Round trip through skopeo's docker-archive reader (manifest.json) into a dir: the same config.
  const dir = await mkdtemp(join(env.work, 'dir-'));
  await tool('skopeo', ['copy', '-q', `docker-archive:${dflt}`, `dir:${dir}`]);
  const copied = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as Json;
  assert.is(copied.mediaType, DOCKER.manifest);
  assert.is(copied.config.digest, built.config);
  const config = JSON.parse(await readFile(join(dir, built.config.slice(7)), 'utf8')) as Json;
  assert.equal(config.config.Healthcheck, HEALTHCHECK);
  assert.equal(config.config.Shell, SHELL);

  await podman.load(dflt);
  const img = await podman.inspect('hc:1');
  assert.is(img.ManifestType, DOCKER.manifest);
  assert.equal(img.Healthcheck, HEALTHCHECK, 'podman reads the Healthcheck of a Docker-typed image');
  // podman 4.3's inspect has no Shell: buildah reads the same storage.
  assert.equal((await podman.dockerConfig('hc:1')).Shell, SHELL);
  await podman.rmi('hc:1');
});

test('type=docker,oci-mediatypes=true: OCI media types, and podman load drops the Healthcheck (the issue this option fixes)', async () => {
  const file = join(env.work, 'oci-typed.tar');
  const built = await build([`type=docker,dest=${file},oci-mediatypes=true`]);
  const m = await raw(`oci-archive:${file}`);
  assertOciImage(m.json, built);
  assert.is(m.digest, sha256(await readFile(join(env.root, 'store/blobs/sha256', m.digest.slice(7)))), 'the stored manifest itself');
  await podman.load(file);
  const img = await podman.inspect('hc:1');
  assert.is(img.ManifestType, OCI.manifest);
  assert.not.ok(img.Healthcheck, `podman shows no Healthcheck for an OCI-typed image: ${JSON.stringify(img.Healthcheck)}`);
  await podman.rmi('hc:1');
});

test('type=oci: OCI media types by default; oci-mediatypes=false gives Docker ones, in archives and layout directories', async () => {
  const ociTar = join(env.work, 'oci.tar');
  const dockerTar = join(env.work, 'oci-docker.tar');
  const dockerDir = join(env.work, 'oci-docker-dir');
  const built = await build([`type=oci,dest=${ociTar}`, `type=oci,dest=${dockerTar},oci-mediatypes=false`, `type=oci,dest=${dockerDir},tar=false,oci-mediatypes=false`]);
  assertOciImage((await raw(`oci-archive:${ociTar}`)).json, built);
  const inTar = await raw(`oci-archive:${dockerTar}`);
  assertDockerImage(inTar.json, built);
  // No :TAG: this skopeo (1.9) skips index.json entries of non-OCI types when it looks a tag up.
  const inDir = await raw(`oci:${dockerDir}`);
  assert.is(inDir.digest, inTar.digest, 'archive and directory hold the same Docker manifest');
  // skopeo copies it on unchanged: into a dir (same manifest bytes) and, needing no conversion
  // to schema2, into a docker-archive with the same config blob.
  const dir = await mkdtemp(join(env.work, 'copied-'));
  await tool('skopeo', ['copy', '-q', `oci-archive:${dockerTar}`, `dir:${dir}`]);
  assert.is(sha256(await readFile(join(dir, 'manifest.json'))), inTar.digest);
  const archive = join(env.work, 'via-skopeo.tar');
  await tool('skopeo', ['copy', '-q', `oci-archive:${dockerTar}`, `docker-archive:${archive}:hc:1`]);
  assert.is((await raw(`docker-archive:${archive}`)).json.config.digest, built.config);
});

test('type=registry: OCI media types by default; oci-mediatypes=false pushes a Docker manifest served as such; podman pull keeps the Healthcheck', async () => {
  const oci = `${reg.host}/mt/oci:1`;
  const docker = `${reg.host}/mt/docker:1`;
  const built = await build([`type=registry,name=${oci}`, `type=registry,name=${docker},oci-mediatypes=false`]);
  assertOciImage((await raw(`docker://${oci}`)).json, built);
  const pushed = await raw(`docker://${docker}`);
  assertDockerImage(pushed.json, built);
  assert.match(built.stderr, `pushed ${docker}@${pushed.digest}`, 'tsbuild reports the digest it pushed, not the stored one');
  assert.match(built.stderr, `pushed ${oci}@${(await raw(`docker://${oci}`)).digest}`);
  // The registry serves the manifest with the Content-Type tsbuild pushed it with.
  const res = await fetch(`http://${reg.host}/v2/mt/docker/manifests/1`, {
    headers: { accept: `${DOCKER.manifest}, ${OCI.manifest}` },
  });
  assert.is(res.status, 200);
  assert.is(res.headers.get('content-type'), DOCKER.manifest);
  assert.is(res.headers.get('docker-content-digest'), pushed.digest);
  // Round trip: skopeo copies it back out unchanged.
  const dir = await mkdtemp(join(env.work, 'pulled-'));
  await tool('skopeo', ['copy', '-q', '--src-tls-verify=false', `docker://${docker}`, `dir:${dir}`]);
  assert.is(sha256(await readFile(join(dir, 'manifest.json'))), pushed.digest);

  await podman.pull(docker);
  const img = await podman.inspect(docker);
  assert.is(img.ManifestType, DOCKER.manifest);
  assert.equal(img.Healthcheck, HEALTHCHECK, 'podman keeps the Healthcheck after a registry round trip');
  assert.equal((await podman.dockerConfig(docker)).Shell, SHELL);
  await podman.rmi(docker);
});

test('several platforms, oci-mediatypes=false: a Docker manifest list over Docker manifests, platforms kept', async () => {
  const ctx = await env.context('FROM scratch\nCOPY a /a\n', { a: 'a\n' });
  const name = `${reg.host}/mt/multi:1`;
  const layout = join(env.work, 'multi-layout');
  await tsbuildOk(['--root', env.root, 'build', '--platform', 'linux/amd64,linux/arm64', '--output', `type=registry,name=${name},oci-mediatypes=false`, '--output', `type=oci,dest=${layout},tar=false`, ctx]);
  const list = await raw(`docker://${name}`);
  assert.is(list.json.mediaType, DOCKER.list);
  assert.equal(list.json.manifests.map((m: Json) => [m.mediaType, `${m.platform.os}/${m.platform.architecture}`]), [
    [DOCKER.manifest, 'linux/amd64'],
    [DOCKER.manifest, 'linux/arm64'],
  ]);
  assert.is(list.json.manifests.some((m: Json) => m.annotations), false);
  const stored = await raw(`oci:${layout}`);
  assert.is(stored.json.mediaType, OCI.index);
  for (const [i, m] of list.json.manifests.entries()) {
    const child = await raw(`docker://${reg.host}/mt/multi@${m.digest}`);
    assert.is(child.digest, m.digest);
    assert.is(child.json.mediaType, DOCKER.manifest);
    assert.is(child.json.config.mediaType, DOCKER.config);
    const storedChild = JSON.parse(await readFile(join(layout, 'blobs/sha256', stored.json.manifests[i].digest.slice(7)), 'utf8')) as Json;
    assert.is(child.json.config.digest, storedChild.config.digest, 'same config blob as the stored image');
    assert.equal(child.json.layers.map((l: Json) => l.digest), storedChild.layers.map((l: Json) => l.digest));
  }
});

test('attestations with oci-mediatypes=false: refused as BuildKit does, naming the key; the docker archive (one image, no attestations) still works', async () => {
  const ctx = await env.context('FROM busybox\nRUN echo prov > /p\n');
  const r = await tsbuild(['--root', env.root, 'build', '--provenance', '--output', `type=registry,name=${reg.host}/mt/prov:1,oci-mediatypes=false`, ctx]);
  assert.is(r.code, 2, r.stderr);
  assert.match(r.stderr, 'cannot export attestations with "oci-mediatypes=false"');
  assert.not.match(r.stderr, 'RUN echo prov', 'refused before building');
  const inspected = await tool('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/mt/prov:1`]).catch((e: Error) => e);
  assert.instance(inspected, Error, 'nothing was pushed');
  const file = join(env.work, 'prov-docker.tar');
  await tsbuildOk(['--root', env.root, 'build', '--provenance', '--output', `type=docker,dest=${file},oci-mediatypes=false`, ctx]);
  assert.is((await raw(`oci-archive:${file}`)).json.mediaType, DOCKER.manifest);
});

test('a bad value is a usage error naming the key, before anything is built', async () => {
  const ctx = await env.context('FROM busybox\nRUN echo never > /n\n');
  const r = await tsbuild(['--root', env.root, 'build', '--output', `type=docker,dest=${join(env.work, 'x.tar')},oci-mediatypes=1`, ctx]);
  assert.is(r.code, 2);
  assert.match(r.stderr, 'oci-mediatypes="1": expected true or false');
  assert.not.match(r.stderr, 'RUN echo never');
});

test('podman left nothing mounted', () => {
  assert.equal(mountsUnder('/tmp').filter((m) => m.includes('tsbuild-podman-')), []);
});

test.run();

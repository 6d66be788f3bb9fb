import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { useBuildRoot } from '../helpers/build-root.js';
import { tsbuild, tsbuildOk } from '../helpers/cli.js';
import { useRegistry } from '../helpers/registry.js';
import { tool } from '../helpers/run-tool.js';

/**
 * `--provenance` / `--attest type=provenance`: a SLSA v0.2 in-toto statement attached as
 * BuildKit does (an attestation manifest in the image index), read back with skopeo and from
 * the exported layout.
 */
const test = suite('integration/provenance');
const env = useBuildRoot(test, 'prov');
const reg = useRegistry(test);

type Json = Record<string, any>;
const DOCKERFILE = 'FROM busybox\nARG V=1\nRUN echo $V > /v\n';

/** The index, the image manifest's digest and the statement of an OCI layout directory. */
async function readAttested(dir: string): Promise<{ index: Json; image: string; statement: Json }> {
  const blob = async (d: string) => JSON.parse(await readFile(join(dir, 'blobs', 'sha256', d.slice('sha256:'.length)), 'utf8')) as Json;
  const top = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as Json;
  const index = await blob(top.manifests[0].digest);
  const att = index.manifests.find((m: Json) => m.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest');
  const manifest = await blob(att.digest);
  return { index, image: att.annotations['vnd.docker.reference.digest'], statement: await blob(manifest.layers[0].digest) };
}

test('--provenance=mode=min,version=v0.2: an attestation manifest beside the image, its statement about that image and its inputs', async () => {
  const ctx = await env.context(DOCKERFILE);
  const out = join(env.work, 'prov-min');
  await tsbuildOk(['--root', env.root, 'build', '--provenance=mode=min,version=v0.2', '-t', 'prov:1', '--build-arg', 'V=2', '--output', `type=oci,dest=${out},tar=false`, ctx]);
  const { index, image, statement } = await readAttested(out);
  assert.equal(index.manifests.map((m: Json) => `${m.platform.os}/${m.platform.architecture}`), ['linux/amd64', 'unknown/unknown']);
  assert.is(image, index.manifests[0].digest, 'the attestation points at the image');
  assert.is(statement.predicateType, 'https://slsa.dev/provenance/v0.2');
  assert.equal(statement.subject, [{ name: 'pkg:docker/prov@1?platform=linux%2Famd64', digest: { sha256: image.slice(7) } }]);
  assert.ok(statement.predicate.materials.some((m: Json) => m.uri.startsWith('pkg:docker/busybox@latest') && /^[0-9a-f]{64}$/.test(m.digest.sha256)));
  // As BuildKit's scrubMinRequest: mode=min leaves build args out, so the parameters are incomplete.
  assert.is(statement.predicate.invocation.parameters.args, undefined);
  assert.is(statement.predicate.metadata.completeness.parameters, false);
  assert.not.ok('buildConfig' in statement.predicate, 'mode=min has no build steps');
  // Runtimes and skopeo still see a plain linux/amd64 image.
  assert.is(JSON.parse(await tool('skopeo', ['inspect', `oci:${out}:1`])).Architecture, 'amd64');
});

test('mode=max records the build steps and the Dockerfile; type=local gets the files and provenance.json', async () => {
  const ctx = await env.context(DOCKERFILE);
  const out = join(env.work, 'prov-max');
  const local = join(env.work, 'prov-local');
  await tsbuildOk(['--root', env.root, 'build', '--attest', 'type=provenance,mode=max', '--output', `type=oci,dest=${out},tar=false`, '--output', `type=local,dest=${local}`, ctx]);
  const { statement } = await readAttested(out);
  assert.is(statement.predicateType, 'https://slsa.dev/provenance/v1', 'SLSA v1 unless asked otherwise');
  const steps = statement.predicate.buildDefinition.internalParameters.buildConfig.llbDefinition;
  assert.ok(steps.some((s: Json) => s.name.endsWith('] RUN echo 1 > /v') && s.op === 'exec'), JSON.stringify(steps));
  const source = statement.predicate.runDetails.metadata.buildkit_metadata.source.infos[0];
  assert.is(Buffer.from(source.data, 'base64').toString(), DOCKERFILE);
  assert.is(await readFile(join(local, 'v'), 'utf8'), '1\n', 'the files at the top of dest');
  // As BuildKit's local exporter: the statement beside them, about each file.
  const beside = JSON.parse(await readFile(join(local, 'provenance.json'), 'utf8')) as Json;
  assert.ok(beside.subject.some((s: Json) => s.name === 'v'));
});

test('pushed with --provenance, the registry holds the index; --attest type=sbom is refused', async () => {
  const name = `${reg.host}/prov/app:1`;
  await tsbuildOk(['--root', env.root, 'build', '--provenance=mode=min', '-t', name, '--push', await env.context(DOCKERFILE)]);
  const index = JSON.parse(await tool('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${name}`])) as Json;
  assert.is(index.manifests.length, 2);
  assert.is(JSON.parse(await tool('skopeo', ['inspect', '--tls-verify=false', `docker://${name}`])).Architecture, 'amd64');
  const sbom = await tsbuild(['--root', env.root, 'build', '--attest', 'type=sbom', await env.context(DOCKERFILE)]);
  assert.is(sbom.code, 2);
  assert.match(sbom.stderr, /only type=provenance is supported/);
});

test.run();

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { useBuildRoot } from '../../helpers/build-root.js';
import { collect, tsbuildOk } from '../../helpers/cli.js';
import { tool } from '../../helpers/run-tool.js';
import { startHttpFileServer, type HttpFileServer } from '../../helpers/http-file-server.js';

/**
 * Ports of BuildKit's frontend/dockerfile/dockerfile_provenance_test.go (the Dockerfile-frontend
 * cases; the gateway and client-frontend ones have no tsbuild form). BuildKit pushes and reads
 * the index back; here the same index is read from an OCI layout directory.
 */
const test = suite('buildkit-port/meta-provenance');
const env = useBuildRoot(test, 'bkp-meta-prov');

type Json = Record<string, any>;
let n = 0;

async function blob(dir: string, digest: string): Promise<Json> {
  return JSON.parse(await readFile(join(dir, 'blobs/sha256', digest.slice('sha256:'.length)), 'utf8')) as Json;
}

/** The image index of an OCI layout: each image (by platform) and its attestation statement. */
async function readImages(dir: string): Promise<{ index: Json; images: Json[]; attestation(platform: Json): Promise<{ desc: Json; statement: Json }> }> {
  const top = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as Json;
  const index = await blob(dir, top.manifests[0].digest);
  return {
    index,
    images: index.manifests.filter((m: Json) => m.platform.os !== 'unknown'),
    async attestation(img: Json) {
      const desc = index.manifests.find((m: Json) => m.annotations?.['vnd.docker.reference.digest'] === img.digest);
      const manifest = await blob(dir, desc.digest);
      return { desc, statement: await blob(dir, manifest.layers[0].digest) };
    },
  };
}

async function buildOci(context: string, args: readonly string[]): Promise<string> {
  const dest = join(env.work, `oci-${++n}`);
  await tsbuildOk(['--root', env.root, 'build', '--output', `type=oci,dest=${dest},tar=false`, ...args, context], { env: { SOURCE_DATE_EPOCH: '' } });
  return dest;
}

test('testProvenanceAttestation: SLSA v1 by default (and v0.2 when asked), mode=max by default, min without build args and labels', async () => {
  // BuildKit's test also passes an https named context (context:foo, credentials redacted) and
  // vcs:source/vcs:revision attributes: tsbuild has no http(s) named contexts nor vcs flags, so
  // the args here are one fewer than BuildKit's (2 with max, 0 with min).
  const dockerfile = 'FROM busybox:latest\nRUN echo "ok" > /foo\n';
  const ctx = await env.context(dockerfile);
  for (const version of ['', 'v1', 'v0.2']) {
    for (const mode of ['', 'min', 'max']) {
      const what = `version=${version || '(default)'} mode=${mode || '(default)'}`;
      const attest = ['type=provenance', ...(version ? [`version=${version}`] : []), ...(mode ? [`mode=${mode}`] : [])].join(',');
      const dir = await buildOci(ctx, ['--attest', attest, '--build-arg', 'FOO=bar', '--label', 'lbl=abc']);
      const imgs = await readImages(dir);
      assert.is(imgs.index.manifests.length, 2, what);
      const img = imgs.images.find((m) => m.platform.os === 'linux' && m.platform.architecture === 'amd64');
      assert.ok(img, what);
      const { desc, statement } = await imgs.attestation(img);
      assert.is(desc.annotations['vnd.docker.reference.type'], 'attestation-manifest', what);
      assert.is(statement._type, 'https://in-toto.io/Statement/v1', what);
      const max = mode === '' || mode === 'max';
      const pred = statement.predicate;
      const expectedBase = `pkg:docker/busybox@latest?platform=${encodeURIComponent('linux/amd64')}`;
      if (version === '' || version === 'v1') {
        assert.is(statement.predicateType, 'https://slsa.dev/provenance/v1', what);
        assert.is(pred.buildDefinition.buildType, 'https://github.com/moby/buildkit/blob/master/docs/attestations/slsa-definitions.md');
        assert.is(pred.runDetails.builder.id, '');
        assert.is(pred.buildDefinition.externalParameters.configSource.uri, undefined);
        assert.is(pred.buildDefinition.externalParameters.configSource.path, 'Dockerfile');
        const request = pred.buildDefinition.externalParameters.request;
        assert.is(request.frontend, 'dockerfile.v0');
        const args = request.args ?? {};
        if (max) {
          assert.is(Object.keys(args).length, 2, JSON.stringify(args));
          assert.is(pred.runDetails.metadata.buildkit_completeness.request, true);
          assert.is(args['build-arg:FOO'], 'bar');
          assert.is(args['label:lbl'], 'abc');
        } else {
          assert.is(pred.runDetails.metadata.buildkit_completeness.request, false);
          assert.is(Object.keys(args).length, 0, JSON.stringify(args));
        }
        const deps = pred.buildDefinition.resolvedDependencies;
        assert.is(deps.length, 1, JSON.stringify(deps));
        assert.is(deps[0].uri, expectedBase);
        assert.ok(deps[0].digest.sha256);
        assert.ok(pred.runDetails.metadata.invocationID);
        assert.equal(request.locals.map((l: Json) => l.name), ['context', 'dockerfile']);
        const started = Date.parse(pred.runDetails.metadata.startedOn);
        const finished = Date.parse(pred.runDetails.metadata.finishedOn);
        assert.ok(Date.now() - finished < 5 * 60_000 && started < finished, what);
        assert.is(pred.buildDefinition.internalParameters.builderPlatform, 'linux/amd64');
        assert.is(pred.runDetails.metadata.buildkit_completeness.resolvedDependencies, false);
        assert.not.ok(pred.runDetails.metadata.buildkit_reproducible);
        assert.not.ok(pred.runDetails.metadata.buildkit_hermetic);
        if (max) {
          const source = pred.runDetails.metadata.buildkit_metadata.source;
          assert.is(source.infos[0].filename, 'Dockerfile');
          assert.is(Buffer.from(source.infos[0].data, 'base64').toString(), dockerfile);
          assert.ok(pred.buildDefinition.internalParameters.buildConfig.llbDefinition.length > 0);
        } else {
          assert.is(pred.runDetails.metadata.buildkit_metadata.source, undefined);
          assert.is(pred.buildDefinition.internalParameters.buildConfig, undefined);
        }
      } else {
        assert.is(statement.predicateType, 'https://slsa.dev/provenance/v0.2', what);
        assert.is(pred.buildType, 'https://mobyproject.org/buildkit@v1');
        assert.is(pred.builder.id, '');
        assert.is(pred.invocation.configSource.uri, undefined);
        assert.is(pred.invocation.configSource.entryPoint, 'Dockerfile');
        const args = pred.invocation.parameters.args ?? {};
        assert.is(pred.invocation.parameters.frontend, 'dockerfile.v0');
        if (max) {
          assert.is(Object.keys(args).length, 2, JSON.stringify(args));
          assert.is(pred.metadata.completeness.parameters, true);
          assert.is(args['build-arg:FOO'], 'bar');
          assert.is(args['label:lbl'], 'abc');
        } else {
          assert.is(pred.metadata.completeness.parameters, false);
          assert.is(Object.keys(args).length, 0, JSON.stringify(args));
        }
        assert.is(pred.materials.length, 1, JSON.stringify(pred.materials));
        assert.is(pred.materials[0].uri, expectedBase);
        assert.ok(pred.materials[0].digest.sha256);
        assert.ok(pred.metadata.buildInvocationID);
        assert.equal(pred.invocation.parameters.locals.map((l: Json) => l.name), ['context', 'dockerfile']);
        assert.ok(Date.parse(pred.metadata.buildStartedOn) < Date.parse(pred.metadata.buildFinishedOn));
        assert.is(pred.metadata.completeness.environment, true);
        assert.is(pred.invocation.environment.platform, 'linux/amd64');
        assert.is(pred.metadata.completeness.materials, false);
        assert.is(pred.metadata.reproducible, false);
        const meta = pred.metadata['https://mobyproject.org/buildkit@v1#metadata'];
        if (max) {
          assert.is(meta.source.infos[0].filename, 'Dockerfile');
          assert.is(Buffer.from(meta.source.infos[0].data, 'base64').toString(), dockerfile);
          assert.ok(pred.buildConfig.llbDefinition.length > 0);
        } else {
          assert.is(meta.source, undefined);
          assert.is(pred.buildConfig, undefined);
        }
      }
    }
  }
});

test('testNilProvenance: a build without layers attests, to an image, type=local and type=tar, one platform or two', async () => {
  const ctx = await env.context('FROM scratch\nENV FOO=bar\n');
  for (const platforms of [[], ['--platform', 'linux/amd64,linux/arm64']]) {
    await buildOci(ctx, ['--attest', 'type=provenance,mode=max', ...platforms]);
    await tsbuildOk(['--root', env.root, 'build', '--attest', 'type=provenance,mode=max', ...platforms, '--output', `type=local,dest=${join(env.work, `nil-local-${++n}`)}`, ctx]);
    const tar = join(env.work, `nil-${++n}.tar`);
    await tsbuildOk(['--root', env.root, 'build', '--attest', 'type=provenance,mode=max', ...platforms, '--output', `type=tar,dest=${tar}`, ctx]);
    // As BuildKit's tar exporter, the statement is in the archive (an image without files has no subjects).
    const listed = (await tool('tar', ['-tf', tar])).split('\n');
    assert.ok(listed.includes(platforms.length ? 'linux_arm64/provenance.json' : 'provenance.json'), listed.join(' '));
  }
});

test('testDuplicatePlatformProvenance: the same platform twice builds once, with provenance', async () => {
  const ctx = await env.context('FROM busybox AS base-linux\nFROM scratch AS base-windows\nFROM base-$TARGETOS\n');
  const dir = await buildOci(ctx, ['--attest', 'type=provenance,mode=max', '--platform', 'linux/amd64,linux/amd64']);
  const imgs = await readImages(dir);
  assert.is(imgs.images.length, 1);
});

test('testSecretSSHProvenance: the secrets and ssh agents RUN mounts use are recorded, optional', async () => {
  const ctx = await env.context('FROM busybox:latest\nRUN --mount=type=secret,id=mysecret --mount=type=secret,id=othersecret --mount=type=ssh echo "ok" > /foo\n');
  const dir = await buildOci(ctx, ['--attest', 'type=provenance,mode=max']);
  const imgs = await readImages(dir);
  assert.is(imgs.index.manifests.length, 2);
  const { statement } = await imgs.attestation(imgs.images[0]);
  const request = statement.predicate.buildDefinition.externalParameters.request;
  assert.equal(request.secrets, [
    { id: 'mysecret', optional: true },
    { id: 'othersecret', optional: true },
  ]);
  assert.equal(request.ssh, [{ id: 'default', optional: true }]);
});

test('testOCILayoutProvenance: a base image from an OCI layout (named context) is a pkg:oci dependency with its digest', async () => {
  const layout = join(env.work, `layout-${++n}`);
  await tsbuildOk(['--root', env.root, 'build', '--output', `type=oci,dest=${layout},tar=false`, await env.context('FROM scratch\nCOPY <<EOF /foo\nfoo\nEOF\n')]);
  const top = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as Json;
  assert.is(top.manifests.length, 1);
  const digest = top.manifests[0].digest.slice('sha256:'.length);
  const ctx = await env.context('FROM foo\nCOPY <<EOF /bar\nbar\nEOF\n');
  const dir = await buildOci(ctx, ['--build-context', `foo=oci-layout://${layout}`, '--attest', 'type=provenance,mode=max']);
  const imgs = await readImages(dir);
  assert.is(imgs.index.manifests.length, 2);
  const { statement } = await imgs.attestation(imgs.images[0]);
  const deps = statement.predicate.buildDefinition.resolvedDependencies;
  assert.is(deps.length, 1, JSON.stringify(deps));
  const material = deps.find((m: Json) => m.uri.includes('/foo'));
  assert.ok(material, JSON.stringify(deps));
  assert.is(material.uri.split('/')[0], 'pkg:oci');
  assert.is(material.digest.sha256, digest);
});

test('testCommandSourceMapping: every step maps to one Dockerfile line, and every line is mapped', async () => {
  const dockerfile = 'FROM busybox\nRUN echo "hello" > foo\nWORKDIR /tmp\nCOPY foo foo2\nCOPY --link foo foo3\nADD bar bar';
  const ctx = await env.context(dockerfile, { foo: 'data', bar: 'data2' });
  const dir = await buildOci(ctx, ['--attest', 'type=provenance,mode=max']);
  const imgs = await readImages(dir);
  assert.is(imgs.index.manifests.length, 2);
  const pred = (await imgs.attestation(imgs.images[0])).statement.predicate;
  const def = pred.buildDefinition.internalParameters.buildConfig.llbDefinition as Json[];
  const steps = new Map(def.map((st) => [st.id, st]));
  assert.is(steps.size, def.length, 'step ids are unique');
  const lines = new Array<boolean>(dockerfile.split('\n').length).fill(false);
  for (const [id, loc] of Object.entries(pred.runDetails.metadata.buildkit_metadata.source.locations as Record<string, Json>)) {
    assert.ok(steps.has(id), `definition for step ${id}`);
    assert.is(loc.locations.length, 1, `step ${id} has one location`);
    for (const l of loc.locations) {
      for (const r of l.ranges) {
        assert.is(r.start.line, r.end.line, `step ${id} is on one line`);
        assert.ok(r.start.line >= 1 && r.start.line <= lines.length, `step ${id}: line ${r.start.line}`);
        lines[r.start.line - 1] = true;
      }
    }
  }
  lines.forEach((covered, i) => assert.ok(covered, `line ${i + 1} is covered`));
});

test('testProvenanceExportLocal: type=local writes provenance.json beside the files, about every file', async () => {
  const ctx = await env.context('FROM busybox:latest AS base\nCOPY <<EOF /out/foo\nok\nEOF\nFROM scratch\nCOPY --from=base /out /\n');
  const dest = join(env.work, `local-${++n}`);
  await tsbuildOk(['--root', env.root, 'build', '--attest', 'type=provenance,mode=max', '--output', `type=local,dest=${dest}`, ctx], { env: { SOURCE_DATE_EPOCH: '' } });
  assert.is(await readFile(join(dest, 'foo'), 'utf8'), 'ok\n');
  const statement = JSON.parse(await readFile(join(dest, 'provenance.json'), 'utf8')) as Json;
  assert.is(statement.predicateType, 'https://slsa.dev/provenance/v1');
  assert.ok(statement.predicate.buildDefinition.buildType);
  assert.equal(statement.subject, [{ name: 'foo', digest: { sha256: createHash('sha256').update('ok\n').digest('hex') } }]);
});

/** A git repository served over dumb http (Go's http.FileServer in BuildKit's test) with branch v1. */
async function servedRepo(http: HttpFileServer, prefix: string, format: 'sha1' | 'sha256', files: Record<string, string>): Promise<string> {
  const repo = await env.context(undefined, files);
  const git = async (...args: string[]) => {
    const r = await collect('git', ['-c', 'user.email=test', '-c', 'user.name=test', '-c', 'init.defaultBranch=main', ...args], {
      cwd: repo,
      env: { GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1' },
    });
    if (r.code !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
    return r.stdout.trim();
  };
  await git('init', '-q', ...(format === 'sha256' ? ['--object-format=sha256'] : []));
  await git('add', '.');
  await git('commit', '-q', '-m', 'initial');
  await git('branch', 'v1');
  await git('update-server-info');
  const walk = async (dir: string): Promise<string[]> =>
    (await Promise.all((await readdir(dir, { withFileTypes: true })).map((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)])))).flat();
  for (const file of await walk(join(repo, '.git'))) http.set(`/${prefix}/${relative(repo, file)}`, { body: await readFile(file) });
  http.set(`/${prefix}/.git/info/refs?service=git-upload-pack`, { body: await readFile(join(repo, '.git/info/refs')) });
  return git('rev-parse', 'v1');
}

test('testGitProvenanceAttestationSHA1 / testGitProvenanceAttestationSHA256 / testGitProvenanceAttestation: a git context is the config source and a dependency with its commit; no locals, hermetic', async () => {
  const http = await startHttpFileServer();
  try {
    for (const format of ['sha1', 'sha256'] as const) {
      const sha = await servedRepo(http, `git-${format}`, format, { 'src/myapp.Dockerfile': 'FROM busybox:latest\nRUN --network=none echo "git" > /foo\nCOPY myapp.Dockerfile /\n' });
      // Credentials in the URL must come out masked.
      const withCreds = http.base.replace('http://', 'http://user:pass@');
      const expectedURL = http.base.replace('http://', 'http://xxxxx:xxxxx@');
      for (const version of ['', 'v1', 'v0.2']) {
        const what = `${format} version=${version || '(default)'}`;
        const attest = ['type=provenance', ...(version ? [`version=${version}`] : [])].join(',');
        const dir = await buildOci(`${withCreds}/git-${format}/.git#v1:src`, ['-f', 'myapp.Dockerfile', '--attest', attest]);
        const imgs = await readImages(dir);
        assert.is(imgs.index.manifests.length, 2, what);
        const { statement } = await imgs.attestation(imgs.images[0]);
        assert.is(statement._type, 'https://in-toto.io/Statement/v1');
        const pred = statement.predicate;
        const expBase = `pkg:docker/busybox@latest?platform=${encodeURIComponent('linux/amd64')}`;
        if (version === '' || version === 'v1') {
          assert.is(statement.predicateType, 'https://slsa.dev/provenance/v1', what);
          assert.ok(pred.buildDefinition.externalParameters.request.frontend);
          assert.is(pred.buildDefinition.externalParameters.configSource.uri, `${expectedURL}/git-${format}/.git#v1:src`, what);
          assert.is(pred.buildDefinition.externalParameters.configSource.path, 'myapp.Dockerfile');
          const deps = pred.buildDefinition.resolvedDependencies;
          assert.is(deps.length, 2, JSON.stringify(deps));
          assert.is(deps[0].uri, expBase);
          assert.ok(deps[0].digest.sha256);
          assert.is(deps[1].uri, `${expectedURL}/git-${format}/.git#v1`);
          assert.is(deps[1].digest[format], sha, what);
          assert.is((pred.buildDefinition.externalParameters.request.locals ?? []).length, 0);
          assert.is(pred.runDetails.metadata.buildkit_completeness.resolvedDependencies, true);
          assert.is(pred.runDetails.metadata.buildkit_hermetic, true);
          assert.is(pred.runDetails.metadata.buildkit_completeness.request, true);
          assert.not.ok(pred.runDetails.metadata.buildkit_reproducible);
          assert.is(Object.keys(pred.runDetails.metadata.buildkit_metadata.vcs ?? {}).length, 0);
        } else {
          assert.is(statement.predicateType, 'https://slsa.dev/provenance/v0.2', what);
          assert.ok(pred.invocation.parameters.frontend);
          assert.is(pred.invocation.configSource.uri, `${expectedURL}/git-${format}/.git#v1:src`, what);
          assert.is(pred.invocation.configSource.entryPoint, 'myapp.Dockerfile');
          assert.is(pred.materials.length, 2, JSON.stringify(pred.materials));
          assert.is(pred.materials[0].uri, expBase);
          assert.ok(pred.materials[0].digest.sha256);
          assert.is(pred.materials[1].uri, `${expectedURL}/git-${format}/.git#v1`);
          assert.is(pred.materials[1].digest[format], sha, what);
          assert.is((pred.invocation.parameters.locals ?? []).length, 0);
          assert.is(pred.metadata.completeness.materials, true);
          assert.is(pred.metadata.completeness.environment, true);
          assert.is(pred.metadata['https://mobyproject.org/buildkit@v1#hermetic'], true);
          assert.is(pred.metadata.completeness.parameters, true);
          assert.is(pred.metadata.reproducible, false);
          assert.is(Object.keys(pred.metadata['https://mobyproject.org/buildkit@v1#metadata'].vcs ?? {}).length, 0);
        }
      }
    }
  } finally {
    await http.close();
  }
});

test('testProvenanceExportLocalForceSplit: platform-split=true puts one platform\'s files and provenance.json in linux_amd64/', async () => {
  const ctx = await env.context('FROM busybox:latest AS base\nCOPY <<EOF /out/foo\nok\nEOF\nFROM scratch\nCOPY --from=base /out /\n');
  const dest = join(env.work, `split-${++n}`);
  await tsbuildOk(['--root', env.root, 'build', '--attest', 'type=provenance,mode=max', '--output', `type=local,dest=${dest},platform-split=true`, ctx], { env: { SOURCE_DATE_EPOCH: '' } });
  assert.is(await readFile(join(dest, 'linux_amd64', 'foo'), 'utf8'), 'ok\n');
  const statement = JSON.parse(await readFile(join(dest, 'linux_amd64', 'provenance.json'), 'utf8')) as Json;
  assert.is(statement.predicateType, 'https://slsa.dev/provenance/v1');
  assert.ok(statement.predicate.buildDefinition);
});

test('testDuplicateLayersProvenance: a base two stages share is listed once among the step layers', async () => {
  const ctx = await env.context('FROM busybox:latest AS base\nFROM base AS a\nRUN date +%s > /a.txt\nFROM base AS b\nCOPY --from=a /a.txt /\nRUN date +%s > /b.txt\n');
  const dir = await buildOci(ctx, ['--attest', 'type=provenance,mode=max']);
  const imgs = await readImages(dir);
  assert.is(imgs.index.manifests.length, 2);
  const meta = (await imgs.attestation(imgs.images[0])).statement.predicate.runDetails.metadata;
  const layers = meta.buildkit_metadata.layers['step0:0'];
  assert.ok(layers, JSON.stringify(Object.keys(meta.buildkit_metadata.layers ?? {})));
  assert.is(layers.length, 1);
  // Listed as the image carries them (compressed), not as the store keeps them: the deepest
  // step's chain is the image's own layers.
  const manifest = await blob(dir, imgs.images[0].digest);
  // Each step: a list of layer chains (one per output), as BuildKit's.
  const chains = Object.values(meta.buildkit_metadata.layers as Record<string, Json[][]>).map((c) => c[0]!);
  const deepest = chains.reduce((a, b) => (b.length > a.length ? b : a));
  assert.equal(deepest.map((l: Json) => [l.mediaType, l.digest, l.size]), manifest.layers.map((l: Json) => [l.mediaType, l.digest, l.size]));
  for (const chain of chains) for (const l of chain) assert.is(l.mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
});

test.run();

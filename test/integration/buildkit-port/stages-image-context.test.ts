import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { useBuildRoot } from '../../helpers/build-root.js';
import { tool } from '../../helpers/run-tool.js';
import { builder, list, read } from './stages-helpers.js';

/**
 * BuildKit frontend/dockerfile/dockerfile_history_test.go, dockerfile_image_test.go and
 * dockerfile_namedcontext_test.go, ported. Where BuildKit uses alpine (for /etc/alpine-release)
 * a local `alpine-stand-in` (busybox plus that file) takes its place; registries are the local store.
 */
const test = suite('buildkit-port: stages / history, image, named contexts');
const env = useBuildRoot(test, 'bk-stages-image');
const b = builder(env);

type Layout = { dir: string; digest: string };

/** An OCI layout directory of `dir`'s build (BuildKit's tests unpack the oci exporter's tar). */
async function ociLayout(dir: string): Promise<Layout> {
  const tar = await mkdtemp(join(env.work, 'oci-'));
  await b.ok(dir, ['--output', `type=oci,dest=${join(tar, 'image.tar')}`]);
  const layout = await mkdtemp(join(env.work, 'layout-'));
  await tool('tar', ['-C', layout, '-xf', join(tar, 'image.tar')]);
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  assert.is(index.manifests.length, 1);
  return { dir: layout, digest: index.manifests[0]!.digest };
}

test.before(async () => {
  await b.ok(await env.context('FROM busybox\nCOPY release /etc/alpine-release\n', { release: '3.20.0\n' }), ['-t', 'alpine-stand-in']);
});

test('testExportedHistory: one history entry per instruction of the final stage, layers where BuildKit makes them', async () => {
  const dir = await env.context('FROM busybox AS base\nENV foo=bar\nCOPY foo /foo2\nFROM busybox\nLABEL lbl=val\nCOPY --from=base foo2 foo3\nWORKDIR /\nRUN echo bar > foo4\nRUN ["ls"]\nEXPOSE 2375 5000 1234/udp\n', { foo: 'contents0' });
  await b.ok(dir, ['-t', 'history:test']);
  const base = (await b.config('busybox')).history!.length;
  const c = await b.config('history:test');
  const h = c.history!.slice(base);
  assert.is(h.length, 6);
  const expect: [string, boolean][] = [['lbl=val', true], ['COPY foo2 foo3', false], ['WORKDIR /', true], ['echo bar > foo4', false], ['RUN ls', false], ['EXPOSE [1234/udp 2375/tcp 5000/tcp]', true]];
  expect.forEach(([text, empty], i) => {
    assert.ok(h[i]!.created_by?.includes(text), `${h[i]!.created_by} has ${text}`);
    assert.is(h[i]!.empty_layer ?? false, empty, text);
    assert.ok((h[i] as { created?: string }).created, `${text} has a time`);
  });
});

test('testExportedHistoryFlattenArgs: a repeated ARG shows once in RUN\'s |N prefix, with its last value', async () => {
  await b.ok(await env.context('FROM busybox\nARG foo=bar\nARG bar=123\nARG foo=bar2\nRUN ls /etc/\n'), ['-t', 'argdup:test']);
  const h = (await b.config('argdup:test')).history!;
  const first = h.findIndex((e) => e.created_by === 'ARG foo=bar');
  assert.ok(first > 0);
  assert.is(h.length, first + 4);
  assert.match(h[first + 1]!.created_by!, 'ARG bar=123');
  assert.match(h[first + 2]!.created_by!, 'ARG foo=bar2');
  const run = h[first + 3]!.created_by!;
  assert.match(run, '/bin/sh -c ls /etc/');
  assert.not.match(run, 'ARG foo=bar');
  assert.match(run, 'RUN |2 foo=bar2 bar=123 ');
});

test('testPullScratch: an image made FROM scratch with only a LABEL is a base; its labels carry on', async () => {
  await b.ok(await env.context('FROM scratch\nLABEL foo=bar\n'), ['-t', 'docker.io/moby/testpullscratch:latest']);
  await b.ok(await env.context('FROM docker.io/moby/testpullscratch:latest\nLABEL bar=baz\nCOPY foo .\n', { foo: 'foo-contents' }), ['-t', 'testpullscratch2']);
  const c = await b.config('testpullscratch2');
  assert.is((c as unknown as { rootfs: { diff_ids: string[] } }).rootfs.diff_ids.length, 1);
  assert.equal(c.config.Labels, { foo: 'bar', bar: 'baz' });
});

test('testDockerfileScratchConfig: FROM scratch gets os, architecture, WorkingDir, PATH; one history entry', async () => {
  await b.ok(await env.context('FROM scratch\nENV foo=bar\n'), ['-t', 'scratchcfg']);
  const c = (await b.config('scratchcfg')) as unknown as { os: string; architecture: string; rootfs: { type: string; diff_ids: string[] }; config: { WorkingDir: string; Env: string[] }; history: { created_by: string; empty_layer?: boolean }[] };
  assert.ok(c.os !== '' && c.architecture !== '');
  assert.ok(c.config.WorkingDir !== '' && c.config.WorkingDir !== undefined);
  assert.is(c.rootfs.type, 'layers');
  assert.is(c.rootfs.diff_ids.length, 0);
  assert.is(c.history.length, 1);
  assert.match(c.history[0]!.created_by, 'ENV foo=bar');
  assert.is(c.history[0]!.empty_layer, true);
  assert.ok(c.config.Env.includes('foo=bar'));
  assert.ok(c.config.Env.some((e) => e.startsWith('PATH=')));
});

test('testOCILayoutMultiname: an OCI export with two names lists the manifest twice (directory and tar)', async () => {
  const dir = await env.context('FROM scratch\nCOPY <<EOF /foo\nhello\nEOF\n');
  type Index = { manifests: { digest: string; mediaType: string; size: number; annotations: Record<string, string> }[] };
  const validate = (idx: Index) => {
    assert.is(idx.manifests.length, 2);
    const [m0, m1] = idx.manifests as [Index['manifests'][0], Index['manifests'][0]];
    assert.is(m0.digest, m1.digest);
    assert.is(m0.mediaType, m1.mediaType);
    assert.is(m0.size, m1.size);
    assert.is(m0.annotations['io.containerd.image.name'], 'docker.io/org/repo:tag1');
    assert.is(m1.annotations['io.containerd.image.name'], 'docker.io/org/repo:tag2');
    assert.is(m0.annotations['org.opencontainers.image.ref.name'], 'tag1');
    assert.is(m1.annotations['org.opencontainers.image.ref.name'], 'tag2');
  };
  const dest = await mkdtemp(join(env.work, 'multiname-'));
  await b.ok(dir, ['--output', `type=oci,dest=${dest},tar=false,"name=org/repo:tag1,org/repo:tag2"`]);
  validate(JSON.parse(await readFile(join(dest, 'index.json'), 'utf8')) as Index);
  const tarDir = await mkdtemp(join(env.work, 'multiname-tar-'));
  await b.ok(dir, ['--output', `type=oci,dest=${join(tarDir, 'i.tar')},"name=org/repo:tag1,org/repo:tag2"`]);
  validate(JSON.parse(await tool('tar', ['-xOf', join(tarDir, 'i.tar'), 'index.json'])) as Index);
});

test('testMultiNilRefsOCIExporter: FROM scratch for two platforms exports one index of two manifests', async () => {
  const dir = await env.context('FROM scratch');
  const dest = await mkdtemp(join(env.work, 'nilrefs-'));
  await b.ok(dir, ['--platform', 'linux/arm64,linux/amd64', '--output', `type=oci,dest=${join(dest, 'out.tar')}`]);
  const idx = JSON.parse(await tool('tar', ['-xOf', join(dest, 'out.tar'), 'index.json'])) as { manifests: { digest: string }[] };
  assert.is(idx.manifests.length, 1);
  const inner = JSON.parse(await tool('tar', ['-xOf', join(dest, 'out.tar'), `blobs/sha256/${idx.manifests[0]!.digest.slice(7)}`])) as { manifests: unknown[] };
  assert.is(inner.manifests.length, 2);
});

test('testNamedImageContext: docker-image:// replaces an image, brings its ENV, and replaces a stage built on a stage', async () => {
  const df = 'FROM busybox AS base\nRUN cat /etc/alpine-release > /out\nFROM scratch\nCOPY --from=base /out /\n';
  let { out } = await b.out(await env.context(df), ['--build-context', 'busybox=docker-image://alpine-stand-in']);
  assert.ok((await read(out, 'out')).length > 0);
  await b.ok(await env.context('FROM alpine-stand-in:latest\nENV PATH=/foobar:$PATH\nENV FOOBAR=foobar\n'), ['-t', 'testnamedimagecontext']);
  ({ out } = await b.out(await env.context('FROM busybox AS base\nRUN cat /etc/alpine-release > /out\nRUN env | grep PATH > /env_path\nRUN env | grep FOOBAR > /env_foobar\nFROM scratch\nCOPY --from=base /out /\nCOPY --from=base /env_path /\nCOPY --from=base /env_foobar /\n'), ['--build-context', 'busybox=docker-image://testnamedimagecontext']));
  assert.ok((await read(out, 'out')).length > 0);
  assert.is((await read(out, 'env_foobar')).trim(), 'FOOBAR=foobar');
  assert.match(await read(out, 'env_path'), '/foobar:');
  await b.ok(await env.context('FROM busybox AS parent\nFROM parent AS base\nRUN echo base > /out\nFROM base\nRUN [ -f /etc/alpine-release ]\nRUN [ ! -f /out ]\n'), ['--build-context', 'base=docker-image://testnamedimagecontext']);
});

test('testNamedImageContextPlatform: an image context named by FROM --platform=$BUILDPLATFORM resolves for that platform, not the target', async () => {
  // BuildKit pushes a BUILDKIT_MULTI_PLATFORM index; a two-platform image in the local store is one.
  await b.ok(await env.context('FROM --platform=$BUILDPLATFORM busybox:latest\n'), ['--platform', 'linux/amd64,linux/arm64', '-t', 'namedplatform']);
  // A platform that never exists, so only the FROM's own platform can match.
  await b.ok(await env.context('FROM --platform=$BUILDPLATFORM busybox AS target\nRUN echo hello\n'), ['--build-context', 'busybox=docker-image://namedplatform', '--platform', 'darwin/ppc64le']);
});

test('testNamedImageContextTimestamps: an image built on a named image context has its own, later time', async () => {
  await b.ok(await env.context('FROM alpine-stand-in\nRUN echo foo >> /test\n'), ['-t', 'ts-base']);
  const created = async (name: string) => new Date((await b.config(name) as unknown as { created: string }).created).getTime();
  await new Promise((r) => setTimeout(r, 1100)); // BuildKit's test has a registry round trip here; times are in seconds
  await b.ok(await env.context('FROM busybox\nRUN echo foo >> /test\n'), ['-t', 'ts-derived', '--build-context', 'busybox=docker-image://ts-base']);
  const diff = (await created('ts-derived')) - (await created('ts-base'));
  assert.ok(diff > 0 && diff < 10 * 60 * 1000, `difference ${diff} ms`);
});

test('testNamedImageContextScratch: docker-image://scratch is an empty base, never pulled', async () => {
  const { out } = await b.out(await env.context('FROM busybox AS build\nCOPY <<EOF /out\nhello world!\nEOF\n'), ['--build-context', 'busybox=docker-image://scratch']);
  assert.equal(await list(out), ['out']);
  assert.is(await read(out, 'out'), 'hello world!\n');
});

test('testNamedLocalContext: a directory context replaces a stage and honours its own .dockerignore', async () => {
  const dir = await env.context('FROM busybox AS base\nRUN cat /etc/alpine-release > /out\nFROM scratch\nCOPY --from=base /o* /\n');
  const other = await env.context(undefined, { out: 'dummy-result', out2: 'dummy-result', '.dockerignore': 'out2\n' });
  const { out } = await b.out(dir, ['--build-context', `base=${other}`]);
  assert.is(await read(out, 'out'), 'dummy-result');
  assert.equal(await list(out), ['out']);
});

test('testNamedOCILayoutContext: oci-layout://DIR@sha256:… replaces a stage and an unknown name, with its config', async () => {
  const layout = await ociLayout(await env.context('FROM busybox:latest\nWORKDIR /test\nRUN sh -c "echo -n first > out"\nRUN sh -c "echo -n second > out2"\nENV foo=bar\n'));
  const dir = await env.context('FROM busybox AS base\nRUN cat /etc/alpine-release > out\nFROM foo AS imported\nRUN echo -n $foo > outfoo\nFROM scratch\nCOPY --from=base /test/o* /\nCOPY --from=imported /test/outfoo /\n');
  const ref = `oci-layout://${layout.dir}@${layout.digest}`;
  const { out } = await b.out(dir, ['--build-context', `base=${ref}`, '--build-context', `foo=${ref}`]);
  assert.is(await read(out, 'out'), 'first');
  assert.is(await read(out, 'out2'), 'second');
  assert.is(await read(out, 'outfoo'), 'bar');
});

test('testNamedOCILayoutContextExport: FROM an oci-layout context exports that image\'s config', async () => {
  const layout = await ociLayout(await env.context('FROM scratch\nWORKDIR /test\nENV foo=bar\n'));
  const dir = await env.context('FROM nonexistent AS base\n');
  await b.ok(dir, ['--build-context', `nonexistent=oci-layout://${layout.dir}@${layout.digest}`, '-t', 'ocilayoutexport']);
  const c = await b.config('ocilayoutexport');
  assert.is(c.config.WorkingDir, '/test');
  assert.ok((c.config.Env as string[]).includes('foo=bar'));
});

test('testEagerNamedContextLookup: named contexts of stages the target does not need are never resolved', async () => {
  const dir = await env.context('FROM broken AS notused\nFROM alpine-stand-in AS base\nRUN echo "base" > /foo\nFROM busybox AS otherstage\nFROM scratch\nCOPY --from=base /foo /foo\n');
  const { out } = await b.out(dir, ['--build-context', 'notused=docker-image://127.0.0.1:9/library/nosuchimage:latest', '--build-context', 'busybox=docker-image://127.0.0.1:9/library/dontexist:latest']);
  assert.is(await read(out, 'foo'), 'base\n');
});

test('issue 09: oci-layout digest that the layout lacks is an error naming it', async () => {
  const layout = await ociLayout(await env.context('FROM scratch\nENV a=b\n'));
  const missing = `sha256:${'0'.repeat(64)}`;
  const r = await b.fails(await env.context('FROM x\n'), ['--build-context', `x=oci-layout://${layout.dir}@${missing}`]);
  assert.match(r.stderr, `no image ${missing}`);
});

test.run();

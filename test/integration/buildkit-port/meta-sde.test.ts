import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readdir, readFile, utimes } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { useBuildRoot } from '../../helpers/build-root.js';
import { collect, tsbuild, tsbuildOk } from '../../helpers/cli.js';
import { startHttpFileServer, type HttpFileServer } from '../../helpers/http-file-server.js';
import { tool } from '../../helpers/run-tool.js';

/**
 * Ports of BuildKit's frontend/dockerfile/dockerfile_source_date_epoch_test.go. BuildKit's
 * exporters default to rewrite-timestamp=false, tsbuild's to true when an epoch is set: where
 * the Go test sets rewrite-timestamp=true, so does the port; where it relies on no rewrite, the
 * port says rewrite-timestamp=false.
 */
const test = suite('buildkit-port/meta-sde');
const env = useBuildRoot(test, 'bkp-meta-sde');
let http: HttpFileServer;
test.before(async () => {
  http = await startHttpFileServer();
});
test.after(async () => {
  await http.close();
});

type Json = Record<string, any>;
const REWRITTEN = 'buildkit/rewritten-timestamp';
let n = 0;

/** Runs a build (no $SOURCE_DATE_EPOCH from this environment) to an OCI layout directory. */
async function buildOci(context: string, args: readonly string[] = [], output = ''): Promise<string> {
  const dest = join(env.work, `oci-${++n}`);
  await tsbuildOk(['--root', env.root, 'build', '--output', `type=oci,dest=${dest},tar=false${output}`, ...args, context], { env: { SOURCE_DATE_EPOCH: '' } });
  return dest;
}
const failBuild = (context: string, args: readonly string[] = []) => tsbuild(['--root', env.root, 'build', ...args, context], { env: { SOURCE_DATE_EPOCH: '' } });

async function blob(dir: string, digest: string): Promise<Json> {
  return JSON.parse(await readFile(join(dir, 'blobs/sha256', digest.slice('sha256:'.length)), 'utf8')) as Json;
}
/** readOCIManifest / readOCIImage of the Go tests. */
async function readOci(dir: string): Promise<{ manifest: Json; config: Json }> {
  const top = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as Json;
  const manifest = await blob(dir, top.manifests[0].digest);
  return { manifest, config: await blob(dir, manifest.config.digest) };
}
/** One file of a layer (readOCILayerMap). */
const layerFile = (dir: string, layer: Json, name: string) => tool('tar', ['-xzOf', join(dir, 'blobs/sha256', layer.digest.slice('sha256:'.length)), name]);
const createdSeconds = (config: Json) => Math.floor(Date.parse(config.created) / 1000);

/** makeTarContext: a tar of `files`, each with its own mtime. */
async function makeTar(files: readonly { name: string; data: string; mtime: number }[]): Promise<Buffer> {
  const dir = await env.context(undefined, Object.fromEntries(files.map((f) => [f.name, f.data])));
  for (const f of files) await utimes(join(dir, f.name), f.mtime, f.mtime);
  const tar = join(env.work, `ctx-${++n}.tar`);
  await tool('tar', ['-C', dir, '--owner=0', '--group=0', '-cf', tar, ...files.map((f) => f.name)]);
  return readFile(tar);
}

test('testSourceDateEpochWithoutExporter: --build-arg SOURCE_DATE_EPOCH sets created and every history entry', async () => {
  // BuildKit's test also clears the exporter's own source-date-epoch attribute, which tsbuild has
  // no form of: the epoch only ever comes from the frontend side here.
  const ctx = await env.context('FROM scratch\nENTRYPOINT foo bar\nCOPY Dockerfile .\n');
  const { config } = await readOci(await buildOci(ctx, ['--build-arg', 'SOURCE_DATE_EPOCH=1700000001']));
  assert.is(createdSeconds(config), 1700000001);
  for (const h of config.history) assert.is(Math.floor(Date.parse(h.created) / 1000), 1700000001);
});

test('testSourceDateEpochDockerfileDefault / testSourceDateEpochDockerfileDefaultOverride: the global ARG default, or the build arg over it, marks the rewritten layer', async () => {
  const tm = Date.UTC(2015, 9, 21, 7, 28) / 1000;
  const ctx = await env.context(`ARG SOURCE_DATE_EPOCH=${tm}\nFROM scratch\nCOPY Dockerfile .\n`);
  const def = await readOci(await buildOci(ctx, [], ',rewrite-timestamp=true'));
  assert.is(def.manifest.layers.length, 1);
  assert.is(def.manifest.layers[0].annotations?.[REWRITTEN], String(tm));
  const ctx2 = await env.context('ARG SOURCE_DATE_EPOCH=1700000001\nFROM scratch\nCOPY Dockerfile .\n');
  const over = await readOci(await buildOci(ctx2, ['--build-arg', 'SOURCE_DATE_EPOCH=1700000002'], ',rewrite-timestamp=true'));
  assert.is(over.manifest.layers.length, 1);
  assert.is(over.manifest.layers[0].annotations?.[REWRITTEN], '1700000002');
});

test('testSourceDateEpochDockerfileDefaultInvalid: a bad ARG default names the value', async () => {
  const ctx = await env.context('ARG SOURCE_DATE_EPOCH=not-a-timestamp\nFROM scratch\nCOPY Dockerfile .\n');
  const r = await failBuild(ctx);
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, 'invalid SOURCE_DATE_EPOCH: not-a-timestamp');
});

test('testSourceDateEpochContextGit: SOURCE_DATE_EPOCH=context for a git URL (dumb http) is its commit time', async () => {
  const repo = await env.context(undefined, { Dockerfile: 'FROM scratch\nCOPY Dockerfile /\n' });
  const date = '2023-11-14T22:15:01Z'; // 1700000101
  const git = async (...args: string[]) => {
    const r = await collect('git', ['-c', 'user.email=test@example.com', '-c', 'user.name=test', '-c', 'init.defaultBranch=main', ...args], {
      cwd: repo,
      env: { GIT_AUTHOR_DATE: date, GIT_COMMITTER_DATE: date, GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1' },
    });
    if (r.code !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
  };
  await git('init', '-q');
  await git('add', 'Dockerfile');
  await git('commit', '-q', '-m', 'msg');
  await git('update-server-info');
  // http.FileServer over the repository: git's dumb http protocol.
  const walk = async (dir: string): Promise<string[]> =>
    (await Promise.all((await readdir(dir, { withFileTypes: true })).map((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)])))).flat();
  for (const file of await walk(join(repo, '.git'))) http.set(`/repo/${relative(repo, file)}`, { body: await readFile(file) });
  // Go's file server ignores the query git's smart-protocol probe sends; this one matches it.
  http.set('/repo/.git/info/refs?service=git-upload-pack', { body: await readFile(join(repo, '.git/info/refs')) });
  const { config } = await readOci(await buildOci(`${http.base}/repo/.git`, ['--build-arg', 'SOURCE_DATE_EPOCH=context']));
  assert.is(createdSeconds(config), 1700000101);
});

test('testSourceDateEpochContextHTTPLastModified: an http context with Last-Modified gives that time, not its files\'', async () => {
  const body = await makeTar([
    { name: 'Dockerfile', data: 'FROM scratch\nCOPY foo /\n', mtime: 1700000202 - 3600 },
    { name: 'foo', data: 'bar', mtime: 1700000202 },
  ]);
  http.set('/lm/context.tar', { body, etag: '"lm"', lastModified: new Date(1700000201 * 1000) });
  const { config } = await readOci(await buildOci(`${http.base}/lm/context.tar`, ['--build-arg', 'SOURCE_DATE_EPOCH=context']));
  assert.is(createdSeconds(config), 1700000201);
});

test('testSourceDateEpochContextHTTPArchive: an http context without Last-Modified gives its newest file time, which RUN sees', async () => {
  const max = 1700000302;
  const body = await makeTar([
    { name: 'Dockerfile', data: 'FROM busybox\nARG SOURCE_DATE_EPOCH\nRUN echo -n "$SOURCE_DATE_EPOCH" >/epoch\n', mtime: max - 3600 },
    { name: 'foo', data: 'bar', mtime: max },
  ]);
  http.set('/archive/context.tar', { body, etag: '"archive"' });
  const dir = await buildOci(`${http.base}/archive/context.tar`, ['--build-arg', 'SOURCE_DATE_EPOCH=context'], ',rewrite-timestamp=true');
  const { manifest, config } = await readOci(dir);
  const last = manifest.layers.at(-1);
  assert.is(last.annotations?.[REWRITTEN], String(max));
  assert.is(await layerFile(dir, last, 'epoch'), String(max));
  assert.is(createdSeconds(config), max);
});

test('testSourceDateEpochContextLocalUnset: SOURCE_DATE_EPOCH=context for a local directory outside git means none', async () => {
  const ctx = await env.context('FROM scratch\nCOPY Dockerfile /\n');
  const { manifest } = await readOci(await buildOci(ctx, ['--build-arg', 'SOURCE_DATE_EPOCH=context'], ',rewrite-timestamp=true'));
  assert.is(manifest.layers.length, 1);
  assert.not.ok(manifest.layers[0].annotations?.[REWRITTEN]);
});

test('testSourceDateEpochStageHTTPArchive: a source stage ADDing an undated archive URL gives the archive\'s newest file time', async () => {
  const max = 1700000402;
  http.set('/stage/src.tar', { body: await makeTar([{ name: 'foo', data: 'bar', mtime: max }]), etag: '"stage"' });
  const ctx = await env.context(
    `ARG SOURCE_DATE_EPOCH=mysource\nFROM scratch AS mysource\nADD ${http.base}/stage/src.tar /\nFROM busybox\nARG SOURCE_DATE_EPOCH\nRUN echo -n "$SOURCE_DATE_EPOCH" >/epoch\n`,
  );
  const dir = await buildOci(ctx, [], ',rewrite-timestamp=true');
  const { manifest, config } = await readOci(dir);
  const last = manifest.layers.at(-1);
  assert.is(last.annotations?.[REWRITTEN], String(max));
  assert.is(await layerFile(dir, last, 'epoch'), String(max));
  assert.is(createdSeconds(config), max);
});

test('testSourceDateEpochStageOverride: --build-arg SOURCE_DATE_EPOCH wins over a source stage', async () => {
  http.set('/override/src.tar', { body: await makeTar([{ name: 'foo', data: 'bar', mtime: 1700000501 }]), etag: '"override"' });
  const ctx = await env.context(`ARG SOURCE_DATE_EPOCH=mysource\nFROM scratch AS mysource\nADD ${http.base}/override/src.tar /\nFROM scratch\nCOPY Dockerfile .\n`);
  const { manifest } = await readOci(await buildOci(ctx, ['--build-arg', 'SOURCE_DATE_EPOCH=1700000502'], ',rewrite-timestamp=true'));
  assert.is(manifest.layers.length, 1);
  assert.is(manifest.layers[0].annotations?.[REWRITTEN], '1700000502');
  assert.is(http.requestsFor('/override/src.tar').length, 0, 'the source stage is never asked');
});

test('testSourceDateEpochStageInvalid: a stage that is more than one remote ADD is refused', async () => {
  const ctx = await env.context('ARG SOURCE_DATE_EPOCH=mysource\nFROM scratch AS mysource\nCOPY Dockerfile /Dockerfile\nFROM scratch\n');
  const r = await failBuild(ctx);
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, 'SOURCE_DATE_EPOCH stage does not meet source-only requirements');
});

test.run();

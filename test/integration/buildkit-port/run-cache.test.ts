/** BuildKit's frontend/dockerfile/dockerfile_cache_test.go, ported: --no-cache, cache mounts, cache export/import, reproducible IDs. */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { useBuildRoot } from '../../helpers/build-root.js';
import { tsbuild, tsbuildOk } from '../../helpers/cli.js';
import { useRegistry } from '../../helpers/registry.js';

const test = suite('buildkit-port: dockerfile_cache_test.go');
const env = useBuildRoot(test, 'bk-run-cache');
const registry = useRegistry(test);

let outs = 0;
function newOut(): string {
  return join(env.work, `out-${++outs}`);
}
/** Builds `dir` into a new local output dir; returns it. */
async function buildLocal(dir: string, extra: string[] = []): Promise<string> {
  const out = newOut();
  await tsbuildOk(['--root', env.root, 'build', '--progress', 'plain', '-o', `type=local,dest=${out}`, ...extra, dir]);
  return out;
}
const read = (dir: string, f: string): Promise<string> => readFile(join(dir, f), 'utf8');
/** The manifest digest of a build, from --metadata-file. */
async function manifestOf(dir: string, extra: string[]): Promise<string> {
  const meta = join(env.work, `meta-${++outs}.json`);
  await tsbuildOk(['--root', env.root, 'build', '--metadata-file', meta, ...extra, dir]);
  return (JSON.parse(await readFile(meta, 'utf8')) as Record<string, string>)['containerimage.digest']!;
}
async function pruneAll(): Promise<void> {
  await tsbuildOk(['--root', env.root, 'prune', '--all']);
}

const UNIQUE = `FROM busybox AS base
COPY foo const
RUN cat /dev/urandom | head -c 100 | sha256sum > unique
FROM scratch
COPY --from=base const /
COPY --from=base unique /
`;

test('testNoCache: --no-cache runs every step; --no-cache-filter only its stage\'s', async () => {
  const dir = await env.context(
    'FROM busybox AS s0\nRUN cat /dev/urandom | head -c 100 | sha256sum | tee unique\nFROM busybox AS s1\nRUN cat /dev/urandom | head -c 100 | sha256sum | tee unique2\nFROM scratch\nCOPY --from=s0 unique /\nCOPY --from=s1 unique2 /\n',
  );
  const d1 = await buildLocal(dir);
  const d2 = await buildLocal(dir, ['--no-cache']);
  assert.is.not(await read(d2, 'unique'), await read(d1, 'unique'));
  assert.is.not(await read(d2, 'unique2'), await read(d1, 'unique2'));
  const d3 = await buildLocal(dir, ['--no-cache-filter', 's1']);
  assert.is(await read(d3, 'unique'), await read(d2, 'unique'));
  assert.is.not(await read(d3, 'unique2'), await read(d1, 'unique2'));
});

test('testCacheMountModeNoCache: a cache mount with mode= starts empty under --no-cache; later builds reuse the newest', async () => {
  const dir = await env.context(
    'FROM busybox AS base\nARG FOO=abc\nRUN --mount=type=cache,target=/cache,mode=0773 touch /cache/$FOO && ls -l /cache | wc -l > /out\n\nFROM scratch\nCOPY --from=base /out /\n',
  );
  assert.is(await read(await buildLocal(dir), 'out'), '2\n');
  assert.is(await read(await buildLocal(dir, ['--no-cache', '--build-arg', 'FOO=def']), 'out'), '2\n');
  // Safety check without --no-cache: the cache the --no-cache build made is used.
  assert.is(await read(await buildLocal(dir, ['--build-arg', 'FOO=ghi']), 'out'), '3\n');
});

test('--no-cache keeps the contents of a cache mount without a base (BuildKit keys it by id alone)', async () => {
  const dir = await env.context('FROM busybox AS base\nARG FOO=abc\nRUN --mount=type=cache,target=/plain touch /plain/$FOO && ls /plain | wc -l > /out\nFROM scratch\nCOPY --from=base /out /\n');
  assert.is(await read(await buildLocal(dir), 'out'), '1\n');
  assert.is(await read(await buildLocal(dir, ['--no-cache', '--build-arg', 'FOO=def']), 'out'), '2\n');
});

test('testWildcardRenameCache: a renamed context file invalidates COPY file*', async () => {
  const dir = await env.context('FROM busybox\nCOPY file* /files/\nRUN ls /files/file1\n', { file1: 'foo' });
  await tsbuildOk(['--root', env.root, 'build', dir]);
  await rename(join(dir, 'file1'), join(dir, 'file2'));
  const r = await tsbuild(['--root', env.root, 'build', dir]);
  assert.is(r.code, 1, 'cache invalidated and the RUN fails');
  assert.match(r.stderr, /Dockerfile:3/);
});

test('testReproducibleIDs: two builds of the same Dockerfile under two names are the same image', async () => {
  const dir = await env.context('FROM busybox\nENV foo=bar\nCOPY foo /\nRUN echo bar > bar\n', { foo: 'foo-contents' });
  const a = await manifestOf(dir, ['-t', 'example.com/moby/dockerfileids:test']);
  const b = await manifestOf(dir, ['-t', 'example.com/moby/dockerfileids2:test']);
  assert.is(b, a);
});

// testCacheImportExport itself exports with the default mode=min, where tsbuild deviates (see
// not-portable-run.json); this is its check with mode=max.
test('registry cache (mode=max) survives a prune: the RUN is not run again', async () => {
  const dir = await env.context(UNIQUE, { foo: 'foobar' });
  const target = `${registry.host}/buildkit/testexportdf:latest`;
  const d1 = await buildLocal(dir, ['--no-cache', '--cache-to', `type=registry,ref=${target},mode=max`]);
  assert.is(await read(d1, 'const'), 'foobar');
  await pruneAll();
  const d2 = await buildLocal(dir, ['--cache-from', `type=registry,ref=${target}`]);
  assert.is(await read(d2, 'const'), 'foobar');
  assert.is(await read(d2, 'unique'), await read(d1, 'unique'));
});

test('testImportExportReproducibleIDs: an image rebuilt from an imported cache is the same image', async () => {
  const dir = await env.context('FROM busybox\nENV foo=bar\nCOPY foo /\nRUN echo bar > bar\n', { foo: 'foobar' });
  const cache = `${registry.host}/buildkit/testexportdf:ids`;
  const a = await manifestOf(dir, ['--no-cache', '-t', 'example.com/moby/dockerfileexpids:test', '--cache-to', `type=registry,ref=${cache}`]);
  await tsbuildOk(['--root', env.root, 'rmi', 'example.com/moby/dockerfileexpids:test']);
  await pruneAll();
  const b = await manifestOf(dir, ['-t', 'example.com/moby/dockerfileexpids2:test', '--cache-from', `type=registry,ref=${cache}`]);
  assert.is(b, a);
});

test('testExportCacheLoop: exporting a local cache over the one it was imported from', async () => {
  const dir = await env.context(
    'FROM busybox as base\nRUN echo aa > /foo\nWORKDIR /bar\nFROM base as base1\nCOPY hello.txt .\nFROM base as base2\nCOPY --from=base1 /bar/hello.txt .\nRUN true\nFROM scratch\nCOPY --from=base2 /foo /f\n',
    { 'hello.txt': 'hello' },
  );
  const cache = join(env.work, 'cache-loop');
  await tsbuildOk(['--root', env.root, 'build', '--cache-to', `type=local,dest=${cache}`, dir]);
  await pruneAll();
  await tsbuildOk(['--root', env.root, 'build', '--cache-to', `type=local,dest=${cache}`, '--cache-from', `type=local,src=${cache}`, dir]);
});

test('testCacheReleased: after builds, prune --all leaves no build cache', async () => {
  const dir = await env.context('FROM busybox\n');
  await tsbuildOk(['--root', env.root, 'build', dir]);
  await tsbuildOk(['--root', env.root, 'build', dir]);
  await pruneAll();
  const du = await tsbuildOk(['--root', env.root, 'du']);
  assert.match(du.stdout, /^cache records\t0$/m);
  const again = await tsbuildOk(['--root', env.root, 'prune', '--all']);
  assert.match(again.stdout, 'removed 0 cache records, 0 layers, 0 blobs');
});

test.run();

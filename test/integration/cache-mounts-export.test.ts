import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeBusyboxRootfs } from '../helpers/busybox-rootfs.js';
import { tsbuild } from '../helpers/cli.js';
import { busyboxContext, inEveryMode, modeContext, type ModeRun } from '../helpers/every-mode.js';
import { startHttpFileServer, type HttpFileServer } from '../helpers/http-file-server.js';
import { startRegistry, startUploadProxy } from '../helpers/registry.js';

/**
 * Issue 11, part 1: portable cache mounts. A CI runner starts with an empty root; the cache it
 * imports carries the RUN cache mounts of the build that exported it (`--cache-to …,mounts=true`),
 * restored before the first RUN that mounts them. The "package manager" is a RUN that downloads
 * each package named in the context's manifest from a server on 127.0.0.1 unless its cache mount
 * already has it; the server counts the downloads.
 */

const DOCKERFILE = `FROM scratch AS base
COPY rootfs/ /

FROM base
ARG REPO
COPY manifest.txt /app/manifest.txt
RUN --network=host --mount=type=cache,target=/var/cache/pm,id=pm \\
    for p in $(cat /app/manifest.txt); do \\
      [ -f /var/cache/pm/$p ] || wget -q -O /var/cache/pm/$p "$REPO/pkg/$p"; \\
      cp /var/cache/pm/$p /app/$p; \\
    done
`;

const PACKAGES = ['alpha', 'beta', 'gamma'];

function downloads(server: HttpFileServer): number {
  return server.requests.filter((r) => r.path.startsWith('/pkg/') && r.status === 200).length;
}

async function build(mode: ModeRun, root: string, ctx: string, server: HttpFileServer, extra: string[]): Promise<string> {
  const r = await mode.run(['--root', root, 'build', '--progress', 'plain', '--allow', 'network.host', '--build-arg', `REPO=${server.base}`, ...extra, ctx]);
  assert.is(r.code, 0, `${mode.name}: ${r.stderr}`);
  return r.stderr;
}

/** Blob files of a local cache (an OCI layout) with their modification times. */
async function blobTimes(layout: string): Promise<Map<string, number>> {
  const dir = join(layout, 'blobs/sha256');
  const out = new Map<string, number>();
  for (const name of await readdir(dir)) out.set(name, (await stat(join(dir, name))).mtimeMs);
  return out;
}

test('an empty root restores the cache mounts of an imported cache: the RUN downloads nothing; an unchanged export writes no blob', async () => {
  const server = await startHttpFileServer();
  try {
    for (const p of PACKAGES) server.set(`/pkg/${p}`, { body: `package ${p}\n`.repeat(100) });
    await inEveryMode(
      {},
      busyboxContext({ Dockerfile: DOCKERFILE, 'manifest.txt': PACKAGES.join(' ') }),
      async (mode) => {
        const ctx = modeContext(mode);
        const cacheDir = join(mode.out, 'cache');
        const [rootA, rootB, rootC] = ['a', 'b', 'c'].map((n) => join(mode.out, `root-${n}`)) as [string, string, string];

        // Runner A: a cold build fills the cache mount and exports it with the layer cache.
        let before = downloads(server);
        const a = await build(mode, rootA, ctx, server, ['--cache-to', `type=local,dest=${cacheDir},mode=max,mounts=true`]);
        assert.is(downloads(server) - before, 3, `${mode.name}: the first build downloads every package`);
        assert.match(a, /1 cache mounts/);
        const config = await cacheConfig(cacheDir);
        assert.equal(config.mounts?.map((m) => [m.id, m.sharing]), [['pm', 'shared']], `${mode.name}: the cache carries the mount`);

        // The manifest changes order: the RUN runs again (its input changed), its packages do not.
        const reordered = join(mode.out, 'ctx-b');
        await mkdir(reordered);
        for (const f of ['Dockerfile']) await writeFile(join(reordered, f), await readFile(join(ctx, f)));
        await writeFile(join(reordered, 'manifest.txt'), [...PACKAGES].reverse().join(' '));
        await makeBusyboxRootfs(join(reordered, 'rootfs'));

        // Runner B: empty root, imports A's cache; the RUN finds every package in its cache mount.
        before = downloads(server);
        const b = await build(mode, rootB, reordered, server, ['--cache-from', `type=local,src=${cacheDir}`]);
        assert.is(downloads(server) - before, 0, `${mode.name}: nothing downloaded with the imported cache mount\n${b}`);
        assert.not.match(b, /cache mount "pm" not restored/);

        // Runner C: the same build without the import downloads everything again.
        before = downloads(server);
        await build(mode, rootC, reordered, server, []);
        assert.is(downloads(server) - before, 3, `${mode.name}: without the import every package is downloaded`);

        // A again, nothing changed (every step cached): the export writes no blob, the mount included.
        const times = await blobTimes(cacheDir);
        await new Promise((r) => setTimeout(r, 20));
        const again = await build(mode, rootA, ctx, server, ['--cache-to', `type=local,dest=${cacheDir},mode=max,mounts=true`]);
        assert.match(again, /1 cache mounts/, `${mode.name}: a fully cached build still exports its cache mounts`);
        const after = await blobTimes(cacheDir);
        assert.equal([...after.keys()].sort(), [...times.keys()].sort(), `${mode.name}: no new blob`);
        for (const [name, t] of times) assert.is(after.get(name), t, `${mode.name}: blob ${name} was not rewritten`);
      },
    );
  } finally {
    await server.close();
  }
});

test('through a registry: the mount goes up once; an unchanged export starts no upload; an empty root downloads nothing', async () => {
  const server = await startHttpFileServer();
  const reg = await startRegistry();
  const proxy = await startUploadProxy(reg.host);
  const work = await mkdtemp(join(tmpdir(), 'tsbuild-cache-mounts-'));
  try {
    for (const p of PACKAGES) server.set(`/pkg/${p}`, { body: `package ${p}\n`.repeat(100) });
    await busyboxContext({ Dockerfile: DOCKERFILE, 'manifest.txt': PACKAGES.join(' ') })(work);
    const ctx = join(work, 'ctx');
    const root: ModeRun = { name: 'root', run: (a) => tsbuild(a), out: work, rootArgs: [] };
    const ref = `${proxy.host}/ci/app:buildcache`;
    const cacheTo = ['--cache-to', `type=registry,ref=${ref},mode=max,mounts=true`];
    await build(root, join(work, 'root-a'), ctx, server, cacheTo);
    assert.ok(proxy.stats.uploadStarts > 0, 'the first export uploads');
    const started = proxy.stats.uploadStarts;
    await build(root, join(work, 'root-a'), ctx, server, cacheTo);
    assert.is(proxy.stats.uploadStarts, started, 'an unchanged export starts no upload (the mount blob included)');

    await writeFile(join(ctx, 'manifest.txt'), [...PACKAGES].reverse().join(' '));
    const before = downloads(server);
    await build(root, join(work, 'root-b'), ctx, server, ['--cache-from', `type=registry,ref=${ref}`]);
    assert.is(downloads(server) - before, 0, 'the empty root restored the mount from the registry');
  } finally {
    await proxy.stop();
    await reg.stop();
    await server.close();
    await rm(work, { recursive: true, force: true });
  }
});

test('mounts= and mounts-max-size= are validated, naming --cache-to and the key', async () => {
  for (const [spec, message] of [
    ['type=local,dest=/tmp/x,mounts-max-size=1GiB', 'mounts-max-size needs mounts=true'],
    ['type=local,dest=/tmp/x,mounts=true,mounts-max-size=lots', 'mounts-max-size="lots": expected a size'],
    ['type=inline,mounts=true', 'unknown key "mounts"'],
  ] as const) {
    const r = await tsbuild(['build', '--cache-to', spec, '.']);
    assert.is(r.code, 2, r.stderr);
    assert.match(r.stderr, '--cache-to');
    assert.match(r.stderr, message);
  }
});

interface CacheConfigFile {
  mounts?: { id: string; sharing: string; blob: { digest: string } }[];
}

async function cacheConfig(layout: string): Promise<CacheConfigFile> {
  const blob = async (d: string) => JSON.parse(await readFile(join(layout, 'blobs/sha256', d.slice(7)), 'utf8'));
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const manifest = await blob(index.manifests[0]!.digest);
  return blob(manifest.config.digest) as Promise<CacheConfigFile>;
}

test.run();

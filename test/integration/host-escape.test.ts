import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { lstat, mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { useBuildRoot } from '../helpers/build-root.js';
import { tsbuild, tsbuildOk } from '../helpers/cli.js';
import { snapshotTree, diffTrees } from '../helpers/tree-compare.js';
import { sha256, type Digest } from '../../src/oci/digest.js';
import { hostPlatform, type Descriptor } from '../../src/oci/image.js';
import { ImageLayout } from '../../src/oci/image-layout.js';
import { MediaType } from '../../src/oci/media-types.js';

/**
 * The red team: each case is a build input that tries to read, write or delete a file of the
 * host outside tsbuild's root — through a URL's name, a context symlink, an archive entry, an
 * image layer, or a symlink a RUN plants — and must leave the canary tree exactly as it was
 * (the helper also checks: no mount, no container left, store consistent).
 */
const run = promisify(execFile);
const test = suite('integration: host escapes');
const env = useBuildRoot(test, 'escape');
const state: { canary: string; server?: Server; base: string } = { canary: '', base: '' };

test.before(async () => {
  state.server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`served ${req.url}\n`);
  });
  await new Promise<void>((resolve) => state.server!.listen(0, '127.0.0.1', resolve));
  state.base = `http://127.0.0.1:${(state.server!.address() as AddressInfo).port}`;
});
test.after(async () => {
  await new Promise<void>((resolve) => (state.server ? state.server.close(() => resolve()) : resolve()));
});

/**
 * A red-team case: a fresh canary outside the build root, holding what the old bugs touched
 * (empty files and directories, which the mount stub clean-up deleted) and a secret to read,
 * must be exactly as it was after the case, whether the case passed or failed.
 */
function red(name: string, fn: () => Promise<void>): void {
  test(name, async () => {
    state.canary = await mkdtemp(join(tmpdir(), 'tsbuild-canary-'));
    try {
      await mkdir(join(state.canary, 'a/b'), { recursive: true });
      await writeFile(join(state.canary, 'a/empty'), '');
      await writeFile(join(state.canary, 'secret'), 'CANARY-SECRET-TEXT\n');
      await mkdir(join(state.canary, 'emptydir'));
      const before = await snapshotTree(state.canary);
      let failure: unknown;
      await fn().catch((e: unknown) => (failure = e));
      assert.equal(diffTrees(before, await snapshotTree(state.canary)), [], 'the canary tree outside the root is untouched');
      if (failure) throw failure;
    } finally {
      await rm(state.canary, { recursive: true, force: true });
    }
  });
}

async function outputOf(ctx: string, extra: string[] = []): Promise<string> {
  const out = join(env.work, `out-${Math.random().toString(36).slice(2)}`);
  await tsbuildOk(['--root', env.root, 'build', ...extra, '--output', `type=local,dest=${out}`, ctx]);
  return out;
}

red('ADD <URL>: a percent-encoded ../ name is one file name inside the image', async () => {
  const enc = encodeURIComponent(`../../../../../../../..${state.canary}/pwned`);
  const ctx = await env.context(['FROM scratch', `ADD ${state.base}/${enc} /dl/`, `ADD ${state.base}/ /root-url/`].join('\n'));
  const out = await outputOf(ctx);
  assert.is(await readFile(join(out, 'dl/pwned'), 'utf8'), `served /${enc}\n`);
  assert.is(await readFile(join(out, 'root-url/__unnamed__'), 'utf8'), 'served /\n');
});

red('RUN: moving a mount target parent and planting a symlink to a host dir deletes nothing there', async () => {
  // runc creates /m/a/b for the tmpfs; the RUN swaps /m for a link to the canary, whose
  // a/b and a are empty dirs the stub clean-up used to remove.
  const ctx = await env.context(['FROM busybox', `RUN --mount=type=tmpfs,target=/m/a/b mv /m /m2 && ln -s ${state.canary} /m && ln -s ${state.canary}/a/empty /m2/a/b2`].join('\n'));
  const out = await outputOf(ctx);
  assert.ok((await lstat(join(out, 'm'))).isSymbolicLink());
});

red('RUN-made symlinks to host paths: WORKDIR, COPY and heredocs below them stay in the rootfs', async () => {
  const c = state.canary;
  const ctx = await env.context(
    ['FROM busybox', `RUN ln -s ${c} /w && ln -s ${c}/a /d && ln -s ${c}/secret /s`, 'WORKDIR /w/sub', 'COPY f /d/', 'COPY f /s', 'COPY <<EOF /w/here\nheredoc\nEOF', 'RUN pwd > /pwd'].join('\n'),
    { f: 'from the context\n' },
  );
  const out = await outputOf(ctx);
  assert.is(await readFile(join(out, 'pwd'), 'utf8'), `${c}/sub\n`, 'the dangling link got its target made inside the rootfs');
  assert.is(await readFile(join(out, c, 'a/f'), 'utf8'), 'from the context\n', 'written where the link points inside the rootfs');
  assert.is(await readFile(join(out, c, 'here'), 'utf8'), 'heredoc\n');
});

red('ADD of a local archive: entries through a symlink member land inside the rootfs', async () => {
  const src = await mkdtemp(join(env.work, 'tar-'));
  await symlink(state.canary, join(src, 'l'));
  await mkdir(join(src, 'real'));
  await writeFile(join(src, 'real/pwned'), 'archive\n');
  const ctx = await env.context(['FROM busybox', 'ADD evil.tar /x/'].join('\n'));
  // l -> canary, then l/pwned: the second member goes through the first.
  await run('tar', ['-C', src, '--transform', 's,^real,l,', '-cf', join(ctx, 'evil.tar'), 'l', 'real/pwned']);
  const out = await outputOf(ctx);
  assert.is(await readFile(join(out, 'x', state.canary, 'pwned'), 'utf8'), 'archive\n');
});

red('a base image layer with a symlinked parent is refused; type=local never writes through a link', async () => {
  const c = state.canary;
  const work = await mkdtemp(join(env.work, 'layers-'));
  const l1 = join(work, 'l1');
  const l2 = join(work, 'l2');
  await mkdir(l1);
  await symlink(c, join(l1, 'l'));
  await mkdir(join(l2, 'l'), { recursive: true });
  await writeFile(join(l2, 'l/pwned'), 'layer\n');
  // Layer 2 names l/pwned without an entry for l: applied onto layer 1 it would go through the link.
  const layout = await ImageLayout.open(join(env.root, 'store'), { create: false });
  const layers: Descriptor[] = [];
  const diffIds: Digest[] = [];
  for (const [dir, members] of [[l1, ['l']], [l2, ['l/pwned']]] as const) {
    const tgz = join(work, `${layers.length}.tgz`);
    await run('tar', ['-C', dir, '--numeric-owner', '--no-recursion', '-czf', tgz, ...members]);
    const gz = await readFile(tgz);
    diffIds.push(sha256(gunzipSync(gz)));
    const { digest, size } = await layout.blobs.putBytes(gz);
    layers.push({ mediaType: MediaType.ociLayerGzip, digest, size });
  }
  const cfg = { architecture: hostPlatform().architecture, os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: diffIds } };
  const cd = await layout.blobs.putBytes(JSON.stringify(cfg));
  const m = await layout.blobs.putBytes(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociManifest, config: { mediaType: MediaType.ociConfig, ...cd }, layers }));
  await layout.tag('docker.io/library/evil-layers:latest', { mediaType: MediaType.ociManifest, ...m });

  // As a snapshot, each layer is unpacked on its own: no link to go through, so it builds.
  const ctx = await env.context('FROM evil-layers\n');
  const out = await outputOf(ctx);
  assert.is(await readFile(join(out, c, 'pwned'), 'utf8'), 'layer\n', 'flattened inside dest');
  assert.ok((await lstat(join(out, 'l'))).isSymbolicLink());
  // Exported again over the first export, the links already in dest are followed only inside it.
  await tsbuildOk(['--root', env.root, 'build', '--output', `type=local,dest=${out}`, ctx]);
  assert.is(await readFile(join(out, c, 'pwned'), 'utf8'), 'layer\n');
});

red('context symlinks: a source, the Dockerfile and .dockerignore pointing at host files are never read', async () => {
  const c = state.canary;
  const ctx = await env.context(undefined, { 'real.txt': 'ok\n' });
  await symlink(join(c, 'secret'), join(ctx, 'link'));
  await writeFile(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY link /x\n');
  const r1 = await tsbuild(['--root', env.root, 'build', ctx]);
  assert.is(r1.code, 1);
  assert.match(r1.stderr, /Dockerfile:2: COPY source "link" is a symlink that points outside the build context/);
  // A symlinked directory on the way: the glob reads the context, never the host dir.
  await symlink(c, join(ctx, 'dirlink'));
  await writeFile(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY dirlink/* /x/\n');
  const r2 = await tsbuild(['--root', env.root, 'build', ctx]);
  assert.is(r2.code, 1);
  assert.not.match(r2.stderr + r2.stdout, /CANARY-SECRET-TEXT|secret/);
  // The Dockerfile itself a link to a host file: its text must not show in any error snippet.
  await rm(join(ctx, 'Dockerfile'));
  await symlink(join(c, 'secret'), join(ctx, 'Dockerfile'));
  const r3 = await tsbuild(['--root', env.root, 'build', ctx]);
  assert.is(r3.code, 1);
  assert.not.match(r3.stderr + r3.stdout, /CANARY-SECRET-TEXT/);
  // ... even when the context holds a file at that path with a syntax error, whose snippet shows.
  await mkdir(join(ctx, c), { recursive: true });
  await writeFile(join(ctx, c, 'secret'), 'FROM scratch\nNOTANINSTRUCTION x\n');
  const r4 = await tsbuild(['--root', env.root, 'build', ctx]);
  assert.is(r4.code, 1);
  assert.not.match(r4.stderr + r4.stdout, /CANARY-SECRET-TEXT/);
  await rm(join(ctx, c.split('/')[1]!), { recursive: true });
  await rm(join(ctx, 'Dockerfile'));
  await writeFile(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY . /\n');
  await symlink(join(c, 'secret'), join(ctx, '.dockerignore'));
  const out = await outputOf(ctx);
  assert.equal((await readdir(out)).sort(), ['.dockerignore', 'Dockerfile', 'dirlink', 'link', 'real.txt']);
  assert.ok((await lstat(join(out, 'link'))).isSymbolicLink(), 'COPY . keeps links as links');
});

red('RUN --mount=type=bind from a stage whose source is a symlink to a host dir binds the stage path', async () => {
  const c = state.canary;
  const ctx = await env.context(
    ['FROM busybox AS s', `RUN mkdir -p ${c} && touch ${c}/inside && ln -s ${c} /evil`, 'FROM busybox', 'RUN --mount=type=bind,from=s,source=/evil,target=/t,rw touch /t/pwned && ls /t > /listing'].join('\n'),
  );
  const out = await outputOf(ctx);
  assert.is(await readFile(join(out, 'listing'), 'utf8'), 'inside\npwned\n', 'the stage path was mounted, not the host dir');
});

red('type=local of several platforms into a dest whose earlier export left a link named like a platform dir', async () => {
  const dest = join(env.work, `out-${Math.random().toString(36).slice(2)}`);
  const first = await env.context('FROM scratch\nCOPY . /\n');
  await symlink(state.canary, join(first, 'linux_amd64'));
  await symlink(state.canary, join(first, 'linux_arm64'));
  await tsbuildOk(['--root', env.root, 'build', '--output', `type=local,dest=${dest}`, first]);
  assert.ok((await lstat(join(dest, 'linux_amd64'))).isSymbolicLink());
  const second = await env.context('FROM scratch\nCOPY f /pwned\n', { f: 'exported\n' });
  await tsbuildOk(['--root', env.root, 'build', '--platform', 'linux/amd64,linux/arm64', '--output', `type=local,dest=${dest}`, second]);
  assert.is(await readFile(join(dest, state.canary, 'pwned'), 'utf8'), 'exported\n', 'written where the link points, inside dest');
});

test.run();

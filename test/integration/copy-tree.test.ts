/**
 * COPY of large trees as real builds: TreeCopier copies entries concurrently, so these check
 * what a sequential copy gave for free — every file arrives, hardlinks stay one inode, a
 * directory's mode and mtime are set after its children (a 0500 directory still gets them),
 * --chown/--chmod/xattrs/.dockerignore apply to every entry — and that Ctrl-C in the middle of
 * a copy stops it with nothing mounted or half-written left behind. Results are unpacked from
 * an OCI layout with umoci, an independent reader of the layers.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { link, lstat, mkdir, readFile, readdir, utimes, writeFile, chmod } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { lsetxattr } from '../../src/oci/native-fs.js';
import { useBuildRoot } from '../helpers/build-root.js';
import { mountsUnder } from '../helpers/mounts.js';
import { CLI, tsbuildOk } from '../helpers/cli.js';
import { tool } from '../helpers/run-tool.js';

const test = suite('integration: COPY of large trees');
const env = useBuildRoot(test, 'copy-tree');

const DIRS = 20;
const PER_DIR = 150;
/** A fixed past time (whole seconds: layers keep seconds) for directories whose mtime is checked. */
const OLD = new Date('2001-02-03T04:05:06Z');

/** Writes `tree/` into `ctx`: DIRS × PER_DIR files, hardlink groups, a 0500 directory, xattrs. */
async function makeTree(ctx: string): Promise<void> {
  for (let d = 0; d < DIRS; d++) {
    await mkdir(join(ctx, `tree/d${d}`), { recursive: true });
    for (let f = 0; f < PER_DIR; f++) await writeFile(join(ctx, `tree/d${d}/f${f}`), `${d}/${f}\n`.repeat(f % 7 === 0 ? 20_000 : 1));
    await writeFile(join(ctx, `tree/d${d}/x.skip`), 'ignored');
  }
  // One inode under many names, spread over directories the copy walks at the same time.
  await writeFile(join(ctx, 'tree/shared'), 'one inode\n');
  for (let d = 0; d < DIRS; d++) await link(join(ctx, 'tree/shared'), join(ctx, `tree/d${d}/shared-link`));
  await mkdir(join(ctx, 'tree/pair'));
  await writeFile(join(ctx, 'tree/pair/a'), 'pair\n');
  await link(join(ctx, 'tree/pair/a'), join(ctx, 'tree/pair/b'));
  // Read-only directories with children: their mode must come after the children are written.
  await mkdir(join(ctx, 'tree/ro/sub'), { recursive: true });
  await writeFile(join(ctx, 'tree/ro/sub/y'), 'y\n');
  await writeFile(join(ctx, 'tree/ro/x'), 'x\n');
  await chmod(join(ctx, 'tree/ro/sub'), 0o500);
  await chmod(join(ctx, 'tree/ro'), 0o500);
  lsetxattr(join(ctx, 'tree/d3/f1'), 'user.origin', Buffer.from('context'));
  // Excluded by .dockerignore except one path below: its parents appear only for that path.
  await mkdir(join(ctx, 'tree/ign/keep'), { recursive: true });
  await mkdir(join(ctx, 'tree/ign/drop'), { recursive: true });
  await writeFile(join(ctx, 'tree/ign/keep/k'), 'k\n');
  await writeFile(join(ctx, 'tree/ign/drop/z'), 'z\n');
  await writeFile(join(ctx, '.dockerignore'), '**/*.skip\ntree/ign\n!tree/ign/keep/k\n');
  // Directory mtimes as the context has them; adding children must not leave them "now".
  for (const dir of ['tree/ro/sub', 'tree/ro', 'tree/d5', 'tree']) await utimes(join(ctx, dir), OLD, OLD);
}

async function unpack(ctx: string, name: string): Promise<string> {
  const layout = join(env.work, `${name}-layout`);
  await tsbuildOk(['--root', env.root, 'build', '--output', `type=oci,dest=${layout},tar=false`, '-t', `${name}:v1`, ctx]);
  const bundle = join(env.work, `${name}-bundle`);
  await tool('umoci', ['unpack', '--image', `${layout}:v1`, bundle]);
  return join(bundle, 'rootfs');
}

test('a tree of thousands of files: every file, hardlinks, 0500 dirs, mtimes, xattrs, .dockerignore, --chown/--chmod', async () => {
  const ctx = await env.context(
    ['FROM busybox', 'COPY tree /t', 'COPY --chown=7:8 --chmod=go-rwx tree /owned', 'RUN find /t -type f | wc -l > /count && ls -l /t/ro > /ro-listing'].join('\n'),
  );
  await makeTree(ctx);
  const rootfs = await unpack(ctx, 'bigtree');

  for (let d = 0; d < DIRS; d++) {
    const names = (await readdir(join(rootfs, `t/d${d}`))).sort();
    assert.is(names.length, PER_DIR + 1, `t/d${d}: every file but the ignored one, plus the shared link`);
    for (const f of [0, 1, 7, PER_DIR - 1]) {
      assert.is(await readFile(join(rootfs, `t/d${d}/f${f}`), 'utf8'), `${d}/${f}\n`.repeat(f % 7 === 0 ? 20_000 : 1));
    }
  }
  assert.is(await readFile(join(rootfs, 'count'), 'utf8'), `${DIRS * PER_DIR + DIRS + 1 + 2 + 2 + 1}\n`, 'RUN sees every file');

  const shared = await lstat(join(rootfs, 't/shared'));
  assert.is(shared.nlink, DIRS + 1, 'the shared inode keeps all its names (in this tree)');
  for (let d = 0; d < DIRS; d++) assert.is((await lstat(join(rootfs, `t/d${d}/shared-link`))).ino, shared.ino);
  assert.is((await lstat(join(rootfs, 't/pair/a'))).ino, (await lstat(join(rootfs, 't/pair/b'))).ino);
  assert.is.not((await lstat(join(rootfs, 'owned/pair/a'))).ino, shared.ino, 'a second COPY makes its own inodes');
  assert.is((await lstat(join(rootfs, 'owned/pair/a'))).ino, (await lstat(join(rootfs, 'owned/pair/b'))).ino);

  for (const [p, mode] of [['t/ro', 0o500], ['t/ro/sub', 0o500], ['owned/ro', 0o500], ['owned/ro/sub', 0o500]] as const) {
    assert.is((await lstat(join(rootfs, p))).mode & 0o7777, mode, `${p} mode`);
  }
  assert.is(await readFile(join(rootfs, 't/ro/sub/y'), 'utf8'), 'y\n');
  assert.is(await readFile(join(rootfs, 'owned/ro/x'), 'utf8'), 'x\n');
  for (const p of ['t/ro', 't/ro/sub', 't/d5']) assert.is((await lstat(join(rootfs, p))).mtimeMs, OLD.getTime(), `${p} keeps its mtime`);

  const xattr = await tool('getfattr', ['--only-values', '-n', 'user.origin', join(rootfs, 't/d3/f1')]);
  assert.is(xattr, 'context');
  assert.equal(await readdir(join(rootfs, 't/ign')), ['keep'], 'only the re-included path of an ignored directory');
  assert.is(await readFile(join(rootfs, 't/ign/keep/k'), 'utf8'), 'k\n');

  for (const p of ['t/d0/f0', 't/ro', 't/d9']) {
    const st = await lstat(join(rootfs, p));
    assert.equal([st.uid, st.gid], [0, 0], `${p}: context files are root's`);
  }
  for (const p of ['owned/d0/f0', 'owned/ro', 'owned/ro/sub/y', 'owned/d9', 'owned/shared']) {
    const st = await lstat(join(rootfs, p));
    assert.equal([st.uid, st.gid], [7, 8], `${p} --chown`);
    assert.is(st.mode & 0o077, 0, `${p} --chmod=go-rwx`);
  }
});

test('Ctrl-C in the middle of a large COPY exits 130 promptly, with nothing mounted or half-written left', async () => {
  const ctx = await env.context('FROM busybox\nCOPY . /ctx\n');
  for (let d = 0; d < 60; d++) {
    await mkdir(join(ctx, `d${d}`));
    for (let f = 0; f < 200; f++) await writeFile(join(ctx, `d${d}/f${f}`), `${d}/${f}\n`);
  }
  const child = spawn(process.execPath, [CLI, '--root', env.root, 'build', '-t', 'interrupted-copy', '--progress', 'rawjson', ctx], { stdio: ['ignore', 'pipe', 'pipe'] });
  // rawjson events go to stderr, one per line.
  let events = '';
  const copying = new Promise<void>((resolve) =>
    child.stderr.on('data', (b) => {
      events += b;
      if (/"type":"vertex.start"[^\n]*COPY/.test(events)) resolve();
    }),
  );
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  child.stdout.resume();
  await Promise.race([copying, exited]);
  await copyUnderway(exited);
  const t0 = Date.now();
  child.kill('SIGINT');
  const code = await exited;
  assert.not.match(events, /"type":"vertex.done"[^\n]*COPY/, 'the copy was still running when interrupted');
  assert.is(code, 130, events.slice(-2000));
  assert.ok(Date.now() - t0 < 10_000, 'stops promptly');
  const index = await readFile(join(env.root, 'store/index.json'), 'utf8');
  assert.not.ok(index.includes('interrupted-copy'));
  // after.each: no mounts, no runc containers, a consistent store.
});

/** Resolves once a mounted rootfs of the build holds part of /ctx: the copy itself has begun. */
async function copyUnderway(exited: Promise<unknown>): Promise<void> {
  let over = false;
  void exited.then(() => (over = true));
  for (const t0 = Date.now(); !over && Date.now() - t0 < 30_000; await new Promise((r) => setTimeout(r, 10))) {
    if (mountsUnder(env.root).some((m) => existsSync(join(m, 'ctx/d0')))) return;
  }
  throw new Error('the COPY never started writing into a mounted rootfs');
}

test.run();

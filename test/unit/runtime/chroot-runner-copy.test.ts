import { execFileSync } from 'node:child_process';
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { rootDirs } from '../../../src/root-dirs.js';
import { ChrootRunner } from '../../../src/runtime/chroot-runner.js';
import { StatManifest } from '../../../src/runtime/stat-manifest.js';
import type { ExecRequest } from '../../../src/runtime/spec.js';
import { makeBusyboxRootfs } from '../../helpers/busybox-rootfs.js';
import { snapshotTree, diffTrees } from '../../helpers/tree-compare.js';
import { testCtx } from './fixture.js';

/**
 * The chroot runner on a plain busybox root (no snapshotter): what the command runs as, what
 * it sees, how it ends, and that the root is as before afterwards.
 */
const test = suite('chroot runner');

async function withRoot(fn: (root: string, runner: ChrootRunner, req: (args: string[], over?: Partial<ExecRequest>) => ExecRequest) => Promise<void>) {
  const base = await mkdtemp(join(tmpdir(), 'tsbuild-chroot-run-'));
  try {
    const dirs = rootDirs(base);
    await mkdir(dirs.tmp, { recursive: true });
    const root = join(base, 'rootfs');
    await makeBusyboxRootfs(root);
    const runner = new ChrootRunner({ dirs });
    const req = (args: string[], over: Partial<ExecRequest> = {}): ExecRequest => ({
      rootfs: root,
      args,
      env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'ONLY=this'],
      cwd: '/',
      uid: 0,
      gid: 0,
      additionalGids: [],
      hostname: 'tsbuild',
      network: 'host',
      mounts: [],
      ...over,
    });
    await fn(root, runner, req);
    assert.equal(await readdir(dirs.tmp), [], 'no scratch left');
  } finally {
    await rm(base, { recursive: true, force: true });
  }
}

async function rejects(p: () => Promise<unknown>, re?: RegExp): Promise<void> {
  const e = await p().then(
    () => undefined,
    (err: unknown) => err as Error,
  );
  assert.ok(e, 'rejected');
  if (re) assert.match(e.message, re);
}

async function output(runner: ChrootRunner, r: ExecRequest): Promise<{ code: number; out: string }> {
  let out = '';
  const res = await runner.run(r, { onOutput: (_s, c) => (out += c.toString()) }, testCtx());
  return { code: res.exitCode, out };
}

if (process.getuid?.() !== 0) {
  test('skipped: not root', () => {});
} else {
  test('exec form by the PATH inside the root, exact env, exit codes; the root unchanged after', async () => {
    await withRoot(async (root, runner, req) => {
      const before = await snapshotTree(root);
      assert.equal(await output(runner, req(['env'])), { code: 0, out: 'PATH=/usr/sbin:/usr/bin:/sbin:/bin\nONLY=this\n' });
      assert.is((await output(runner, req(['sh', '-c', 'exit 7']))).code, 7);
      const missing = await output(runner, req(['no-such-command']));
      assert.is(missing.code, 127);
      assert.match(missing.out, /executable file not found/);
      // It sees runc's /dev, no /proc, and the hosts file it was given.
      const hosts = join(root, '..', 'hosts');
      await writeFile(hosts, '127.0.0.1 given\n');
      const seen = await output(
        runner,
        req(['sh', '-c', 'ls /dev; test -e /proc && echo proc; cat /etc/hosts; echo x > /dev/null && echo null-ok; pwd'], {
          mounts: [{ destination: '/etc/hosts', source: hosts, type: 'bind', options: ['rbind', 'rw'] }],
          cwd: '/tmp',
        }),
      );
      for (const name of ['null', 'zero', 'urandom', 'shm', 'fd']) assert.match(seen.out, new RegExp(`^${name}$`, 'm'));
      assert.not.match(seen.out, /^proc$/m);
      assert.match(seen.out, /127\.0\.0\.1 given\nnull-ok\n\/tmp\n$/);
      assert.equal(diffTrees(before, await snapshotTree(root)), [], 'the runtime took back all it put there');
      assert.not.ok(await lstat(join(root, 'etc/hosts')).catch(() => undefined), 'no /etc/hosts left');
    });
  });

  test('what the runtime put in place and took back leaves no change in the stat manifest diff', async () => {
    await withRoot(async (root, _plain, req) => {
      await writeFile(join(root, 'etc/hosts'), 'image hosts\n');
      await mkdir(join(root, 'dev'));
      await mkdir(join(root, 'proc'));
      const manifest = await StatManifest.record(root);
      const dirs = rootDirs(join(root, '..'));
      const runner = new ChrootRunner({
        dirs,
        snapshots: {
          async acceptCtime(merged, rels) {
            for (const rel of rels) manifest.acceptCtime(rel, await lstat(join(merged, rel), { bigint: true }));
          },
        },
      });
      const hosts = join(root, '..', 'hosts');
      await writeFile(hosts, '127.0.0.1 given\n');
      const r = await output(runner, req(['sh', '-c', 'cat /etc/hosts; echo changed > /etc/hosts; touch /dev/junk'], { mounts: [{ destination: '/etc/hosts', source: hosts, type: 'bind', options: ['rbind', 'rw'] }] }));
      assert.is(r.out, '127.0.0.1 given\n');
      assert.is(await readFile(join(root, 'etc/hosts'), 'utf8'), 'image hosts\n');
      const upper = join(root, '..', 'upper');
      await mkdir(upper);
      await manifest.writeUpper(root, upper, { opaqueXattr: 'user.overlay.opaque' });
      assert.equal(await readdir(upper), [], 'an empty diff');
    });
  });

  test('USER: ids and groups set, no capabilities; root keeps the default set but not CAP_SYS_CHROOT', async () => {
    await withRoot(async (_root, runner, req) => {
      assert.is((await output(runner, req(['id'], { uid: 1000, gid: 1000, additionalGids: [10] }))).out, 'uid=1000(app) gid=1000(app) groups=10(wheel),1000(app)\n');
      // chown needs CAP_CHOWN: root has it, app not.
      assert.is((await output(runner, req(['sh', '-c', 'touch /tmp/f && chown 1000 /tmp/f']))).code, 0);
      assert.is.not((await output(runner, req(['sh', '-c', 'touch /tmp/g && chown 0:0 /tmp/f'], { uid: 1000, gid: 1000 }))).code, 0);
      // chroot(2) again would walk out of the root.
      const escape = await output(runner, req(['chroot', '/tmp', '/bin/busybox', 'true']));
      assert.is.not(escape.code, 0);
      assert.match(escape.out, /not permitted/i);
    });
  });

  test('abort kills the command and what it started; refusals name the isolation', async () => {
    await withRoot(async (_root, runner, req) => {
      const marker = `sleep ${400000 + (process.pid % 100000)}`;
      const ac = new AbortController();
      const running = runner.run(req(['sh', '-c', `(setsid ${marker} >/dev/null 2>&1 &); ${marker}`]), { onOutput: () => undefined }, testCtx(ac.signal));
      await new Promise((r) => setTimeout(r, 300));
      ac.abort(new Error('stop'));
      await rejects(() => running);
      let left: number[] = [];
      try {
        left = execFileSync('pgrep', ['-x', '-f', marker]).toString().split('\n').filter(Boolean).map(Number);
      } catch {
        // none
      }
      for (const pid of left) process.kill(pid, 'SIGKILL');
      assert.equal(left, [], 'nothing left running');

      await rejects(() => runner.run(req(['true'], { network: 'none' }), { onOutput: () => undefined }, testCtx()), /isolation chroot cannot give RUN --network=none a private network/);
      await rejects(() => runner.run(req(['true'], { cgroupLimits: { memory: { limit: 1 << 30 } } }), { onOutput: () => undefined }, testCtx()), /isolation chroot cannot give RUN resource limits/);
      await rejects(() => runner.run(req(['true'], { privileged: { capabilities: [] } }), { onOutput: () => undefined }, testCtx()), /--security=insecure/);
    });
  });

  test('a cache directory of the store is moved in for the command and back after', async () => {
    await withRoot(async (root, runner, req) => {
      const cache = join(root, '..', 'cache', 'c1');
      await mkdir(cache, { recursive: true });
      await writeFile(join(cache, 'old'), 'o');
      const r = await output(runner, req(['sh', '-c', 'ls /var/cache/x && echo new > /var/cache/x/new'], { mounts: [{ destination: '/var/cache/x', source: cache, type: 'bind', options: ['rbind', 'rw'] }] }));
      assert.is(r.out, 'old\n');
      assert.is(await readFile(join(cache, 'new'), 'utf8'), 'new\n');
      assert.not.ok(await lstat(join(root, 'var/cache')).catch(() => undefined), 'the mount point it made is gone');
    });
  });
}

test.run();

import { execFileSync, spawn } from 'node:child_process';
import { readdirSync, readlinkSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { writeEtcFiles } from '../../../src/runtime/etc-files.js';
import { mountRootfs } from '../../../src/runtime/overlay.js';
import { cleanupStaleContainers, RuncSandbox, type ExecResult } from '../../../src/runtime/runc.js';
import type { ExecRequest } from '../../../src/runtime/spec.js';
import { resolveUser } from '../../../src/runtime/user.js';
import { mountsUnder } from '../../helpers/mounts.js';
import { busyboxLayer, makeRoot, skipReason, testCtx, type TestRoot } from './fixture.js';

const test = suite('RuncSandbox');
const skip = skipReason();
const PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

function runcList(stateRoot: string): string[] {
  // runc list complains on stderr about containers still being created: ignore those.
  const out = execFileSync('runc', ['--root', stateRoot, 'list', '--format', 'json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return ((JSON.parse(out) ?? []) as { id: string }[]).map((c) => c.id);
}

function runcPids(stateRoot: string): number[] {
  const out = execFileSync('runc', ['--root', stateRoot, 'list', '--format', 'json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return ((JSON.parse(out) ?? []) as { pid: number }[]).map((c) => c.pid);
}

/** Pids sharing the pid namespace `ns` (a `pid:[inode]` link text): the processes of one container. */
function processesInPidNs(ns: string): number[] {
  const out: number[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      if (readlinkSync(`/proc/${pid}/ns/pid`) === ns) out.push(Number(pid));
    } catch {
      /* exited meanwhile */
    }
  }
  return out;
}

interface Ran extends ExecResult {
  stdout: string;
  stderr: string;
}

/** Mounts busybox, runs `script` under sh as `user`, releases everything. */
async function runScript(
  root: TestRoot,
  script: string,
  opts: { user?: string; network?: 'host' | 'none'; signal?: AbortSignal } = {},
): Promise<Ran> {
  const layer = await busyboxLayer(root);
  const m = await mountRootfs(root.store, root.dirs, [layer], {}, testCtx());
  const etcDir = await mkdtemp(join(root.dirs.tmp, 'etc-'));
  try {
    const network = opts.network ?? 'host';
    const ids = await resolveUser(m.merged, opts.user ?? '');
    const req: ExecRequest = {
      rootfs: m.merged,
      args: ['/bin/sh', '-c', script],
      env: [PATH, 'HOME=/root'],
      cwd: '/',
      ...ids,
      hostname: 'tsbuild-test',
      network,
      mounts: await writeEtcFiles(etcDir, { hostname: 'tsbuild-test', network }),
    };
    const sandbox = new RuncSandbox({ stateRoot: root.dirs.runc, bundleRoot: root.dirs.tmp });
    let stdout = '';
    let stderr = '';
    const res = await sandbox.run(
      req,
      { onOutput: (s, c) => (s === 1 ? (stdout += c.toString()) : (stderr += c.toString())) },
      testCtx(opts.signal),
    );
    return { ...res, stdout, stderr };
  } finally {
    await m.release();
    await rm(etcDir, { recursive: true, force: true });
  }
}

if (skip) {
  test(`skipped: ${skip}`, () => {});
} else {
  test('runs a command as root with its own pid/uts namespaces and /etc/hosts', async () => {
    const root = await makeRoot();
    try {
      const r = await runScript(root, 'echo hi; id; hostname; cat /etc/hosts; ls /proc/1/; echo err >&2; echo pid=$$');
      assert.is(r.exitCode, 0, r.stderr);
      const lines = r.stdout.split('\n');
      assert.is(lines[0], 'hi');
      // No USER is root with its /etc/group memberships (the busybox rootfs has root in wheel).
      assert.is(lines[1], 'uid=0(root) gid=0(root) groups=0(root),10(wheel)');
      assert.is(lines[2], 'tsbuild-test');
      assert.match(r.stdout, /127\.0\.0\.1\tlocalhost tsbuild-test/);
      assert.match(r.stdout, /\ncmdline\n/);
      assert.match(r.stdout, /pid=1\n/, 'sh is pid 1 in a new pid namespace');
      assert.is(r.stderr, 'err\n');
      assert.equal(runcList(root.dirs.runc), []);
      assert.equal((await readdir(root.dirs.tmp)).filter((n) => n.startsWith('tsbuild-')), [], 'bundle removed');
    } finally {
      await root.dispose();
    }
  });

  test('a failing command is a result with its exit code, not an error', async () => {
    const root = await makeRoot();
    try {
      assert.is((await runScript(root, 'exit 7')).exitCode, 7);
      assert.is((await runScript(root, 'exit 255')).exitCode, 255);
      assert.is((await runScript(root, 'exec /nonexistent')).exitCode, 127);
    } finally {
      await root.dispose();
    }
  });

  test('USER app runs as 1000:1000 with supplementary group 10 and no effective caps', async () => {
    const root = await makeRoot();
    try {
      const r = await runScript(root, 'id; grep CapEff /proc/self/status; touch /root/x', { user: 'app' });
      assert.is(r.stdout.split('\n')[0], 'uid=1000(app) gid=1000(app) groups=10(wheel),1000(app)');
      assert.match(r.stdout, /CapEff:\s+0000000000000000/);
      assert.is(r.exitCode, 1, 'non-root cannot write /root (no DAC_OVERRIDE)');
    } finally {
      await root.dispose();
    }
  });

  test('root has the default caps but not e.g. SYS_ADMIN', async () => {
    const root = await makeRoot();
    try {
      const r = await runScript(root, 'grep CapEff /proc/self/status; mount -t tmpfs t /mnt');
      // CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP
      assert.match(r.stdout, /CapEff:\s+00000000a80425fb/);
      assert.is.not(r.exitCode, 0, 'mount needs CAP_SYS_ADMIN');
    } finally {
      await root.dispose();
    }
  });

  test('network none: only lo; host: the host interfaces', async () => {
    const root = await makeRoot();
    try {
      const ifaces = (out: string) =>
        out
          .split('\n')
          .slice(2)
          .map((l) => l.split(':')[0]!.trim())
          .filter(Boolean)
          .sort();
      const none = await runScript(root, 'cat /proc/net/dev', { network: 'none' });
      assert.is(none.exitCode, 0, none.stderr);
      assert.equal(ifaces(none.stdout), ['lo']);
      const host = await runScript(root, 'cat /proc/net/dev', { network: 'host' });
      const hostIfaces = ifaces(await readFile('/proc/net/dev', 'utf8'));
      assert.equal(ifaces(host.stdout), hostIfaces);
      assert.ok(hostIfaces.length > 1, 'host has more than lo');
    } finally {
      await root.dispose();
    }
  });

  test('abort mid-sleep rejects quickly and leaves no container, mount or process', async () => {
    const root = await makeRoot();
    const ac = new AbortController();
    try {
      const started = Date.now();
      const p = runScript(root, 'echo started; sleep 30; echo never', { signal: ac.signal });
      // Wait until the container is really running.
      while (runcList(root.dirs.runc).length === 0 && Date.now() - started < 5000) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 100));
      assert.is(runcList(root.dirs.runc).length, 1);
      const ns = readlinkSync(`/proc/${runcPids(root.dirs.runc)[0]}/ns/pid`);
      assert.ok(processesInPidNs(ns).length > 0, 'the container runs');
      const abortAt = Date.now();
      ac.abort(new Error('test abort'));
      await p.then(
        () => assert.unreachable('should reject'),
        (e: unknown) => assert.is((e as Error).message, 'test abort'),
      );
      assert.ok(Date.now() - abortAt < 3000, `rejected in ${Date.now() - abortAt} ms`);
      assert.equal(runcList(root.dirs.runc), []);
      assert.equal(mountsUnder(root.dirs.root), []);
      assert.equal(processesInPidNs(ns), [], 'no container process left');
    } finally {
      ac.abort(new Error('cleanup')); // on an assertion failure, don't leave the sleep behind
      await new Promise((r) => setTimeout(r, 200));
      await root.dispose();
    }
  });

  test('an already-aborted signal runs nothing', async () => {
    const root = await makeRoot();
    try {
      const ac = new AbortController();
      ac.abort(new Error('early'));
      await runScript(root, 'true', { signal: ac.signal }).then(
        () => assert.unreachable('should reject'),
        (e: unknown) => assert.is((e as Error).message, 'early'),
      );
      assert.equal(runcList(root.dirs.runc), []);
    } finally {
      await root.dispose();
    }
  });

  test('cleanupStaleContainers kills what a crashed process left and spares a live one', async () => {
    const root = await makeRoot();
    try {
      const layer = await busyboxLayer(root);
      const mounts = [
        await mountRootfs(root.store, root.dirs, [layer], {}, testCtx()),
        await mountRootfs(root.store, root.dirs, [layer], {}, testCtx()),
      ];
      const ac = new AbortController();
      try {
        // Live: a sleep in this process.
        const sandbox = new RuncSandbox({ stateRoot: root.dirs.runc, bundleRoot: root.dirs.tmp });
        const req = (rootfs: string): ExecRequest => ({
          rootfs, args: ['sleep', '30'], env: [PATH], cwd: '/', uid: 0, gid: 0, additionalGids: [],
          hostname: 'x', network: 'host', mounts: [],
        });
        const live = sandbox.run(req(mounts[0]!.merged), { onOutput() {} }, testCtx(ac.signal)).catch((e: unknown) => e);
        // Crashed: a child node process starts a sleep container and is SIGKILLed (runc run dies with it).
        const runcJs = fileURLToPath(new URL('../../../src/runtime/runc.js', import.meta.url));
        const script = `
          const { RuncSandbox } = await import(${JSON.stringify(runcJs)});
          const s = new RuncSandbox({ stateRoot: ${JSON.stringify(root.dirs.runc)}, bundleRoot: ${JSON.stringify(root.dirs.tmp)} });
          s.run(${JSON.stringify(req(mounts[1]!.merged))}, { onOutput() {} }, { signal: new AbortController().signal, events: { emit() {} } });`;
        const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: 'ignore', detached: true });
        const t0 = Date.now();
        while (runcList(root.dirs.runc).length < 2 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 20));
        assert.is(runcList(root.dirs.runc).length, 2);
        process.kill(-child.pid!, 'SIGKILL'); // node and its runc child
        await new Promise((r) => setTimeout(r, 100));
        assert.is(runcList(root.dirs.runc).length, 2, 'the orphaned container keeps running');
        const namespaces = runcPids(root.dirs.runc).map((pid) => readlinkSync(`/proc/${pid}/ns/pid`));

        const removed = await cleanupStaleContainers(root.dirs.runc);
        assert.is(removed.length, 1);
        const left = runcList(root.dirs.runc);
        assert.is(left.length, 1);
        assert.is.not(left[0], removed[0]);
        const alive = () => namespaces.filter((ns) => processesInPidNs(ns).length > 0).length;
        for (const t1 = Date.now(); alive() > 1 && Date.now() - t1 < 3000; ) await new Promise((r) => setTimeout(r, 20));
        assert.is(alive(), 1, 'crashed container processes killed');
        ac.abort(new Error('done'));
        assert.is(((await live) as Error).message, 'done');
        assert.equal(runcList(root.dirs.runc), []);
      } finally {
        ac.abort(new Error('cleanup'));
        for (const m of mounts) await m.release();
      }
    } finally {
      await root.dispose();
    }
  });
}

test('cleanupStaleContainers asks runc only when its state dir holds a container of ours', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'runc-state-'));
  try {
    const missingRunc = join(dir, 'no-such-runc');
    assert.equal(await cleanupStaleContainers(join(dir, 'absent'), missingRunc), []);
    await mkdir(join(dir, 'other-container'));
    assert.equal(await cleanupStaleContainers(dir, missingRunc), []);
    await mkdir(join(dir, 'tsbuild-0123'));
    // Now runc is run (and, missing, fails): the check only skips it when nothing can be stale.
    await cleanupStaleContainers(dir, missingRunc).then(
      () => assert.unreachable('runc was not run'),
      (e: unknown) => assert.instance(e, Error),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();

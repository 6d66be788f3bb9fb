import { spawn } from 'node:child_process';
import { constants, type BigIntStats } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { chmod, link, lstat, lutimes, mkdir, mkdtemp, rename, rm, rmdir, symlink } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Ctx } from '../ctx.js';
import { BuildError } from '../errors.js';
import { atInRoot, containerPathParts, mkdirInRoot, resolveInRoot } from '../oci/in-root.js';
import { mknod } from '../oci/native-fs.js';
import { packageFile } from '../package-file.js';
import type { RootDirs } from '../root-dirs.js';
import { cloneEntry, cloneTree } from './clone-entry.js';
import type { CommandRunner, ExecIO, ExecResult } from './command-runner.js';
import { HostNetworkFallback } from './sandbox-network.js';
import { DEFAULT_CAPABILITIES, type BindMount, type ExecRequest } from './spec.js';

/** Capability bits (linux/capability.h) of the names in Docker's default set. */
const CAP_BITS: Readonly<Record<string, number>> = {
  CAP_CHOWN: 0, CAP_DAC_OVERRIDE: 1, CAP_FOWNER: 3, CAP_FSETID: 4, CAP_KILL: 5, CAP_SETGID: 6, CAP_SETUID: 7, CAP_SETPCAP: 8,
  CAP_NET_BIND_SERVICE: 10, CAP_NET_RAW: 13, CAP_SYS_CHROOT: 18, CAP_MKNOD: 27, CAP_AUDIT_WRITE: 29, CAP_SETFCAP: 31,
};

/**
 * What a RUN keeps: Docker's default set, less CAP_SYS_CHROOT. Without a mount namespace the
 * chroot is the only wall between the command and the builder's own filesystem, and a root
 * process that may call chroot(2) again walks out of it (chroot into a subdirectory, then
 * `..` past the old root).
 */
const CHROOT_CAPS = DEFAULT_CAPABILITIES.filter((c) => c !== 'CAP_SYS_CHROOT');

/** As spec.ts: builds routinely open many files (the helper lowers it to what we may grant). */
const NOFILE = 1048576;

/** Devices every RUN expects (runc's defaults), made when we hold CAP_MKNOD. */
const DEVICES: readonly [name: string, major: number, minor: number][] = [
  ['null', 1, 3], ['zero', 1, 5], ['full', 1, 7], ['random', 1, 8], ['urandom', 1, 9], ['tty', 5, 0],
];
const DEV_LINKS: readonly [name: string, target: string][] = [
  ['fd', '/proc/self/fd'], ['stdin', '/proc/self/fd/0'], ['stdout', '/proc/self/fd/1'], ['stderr', '/proc/self/fd/2'], ['ptmx', 'pts/ptmx'],
];


/** The snapshotter side the runner reports its own moves to (CopySnapshotter.acceptCtime). */
export interface CtimeSink {
  acceptCtime(merged: string, rels: readonly string[]): Promise<void>;
}

/** One path the runtime provides during the command, and what was there before. */
interface Provided {
  /** Real path inside the root (no symlink in it), '' never. */
  readonly rel: string;
  /** Inode of its parent directory when set up: a parent the command replaced gets nothing back. */
  readonly parentIno: bigint;
  /** Where the original was moved meanwhile. */
  aside?: string;
  /** A directory moved in (rather than copied) from here, and its inode, to be moved back. */
  movedFrom?: { readonly path: string; readonly ino: bigint };
}

/**
 * Runs RUN commands without runc, for isolation chroot (see native/chroot-exec.c for the
 * process side): chrooted into the working root of the copy snapshotter, as the command's
 * user, with Docker's default capabilities for root (minus CAP_SYS_CHROOT, see CHROOT_CAPS)
 * and none for any other user, in whatever pid/ipc/uts namespaces the host still allows.
 *
 * There are no mounts here, so what runc would mount is put into the root for the command's
 * time and taken out again after, each original moved aside meanwhile and moved back (the
 * snapshot's diff then sees no change; see CtimeSink):
 * - /dev: a fresh directory with null, zero, full, random, urandom, tty (with CAP_MKNOD), shm,
 *   pts and runc's fd/std* links; /proc and /sys: absent (procfs and sysfs can't be mounted);
 * - each of the request's mounts (/etc/hosts, /etc/resolv.conf, RUN --mount): a read-write
 *   directory of tsbuild's own (a cache, a throwaway copy) is moved in and back, anything else
 *   copied (reflinked) in and deleted after; a tmpfs is an empty directory; an ssh socket is
 *   hardlinked when on the same filesystem.
 * What it can't honour fails with a BuildError naming the isolation: a private network
 * (--network=none), cgroup limits, --security=insecure, a terminal.
 */
export class ChrootRunner implements CommandRunner {
  readonly kind = 'chroot' as const;
  readonly cgroups = 'none' as const;
  readonly #dirs: RootDirs;
  readonly #snapshots: CtimeSink | undefined;
  readonly #helper: string;
  readonly #network = new HostNetworkFallback('isolation chroot makes no network namespace');

  constructor(opts: { dirs: RootDirs; snapshots?: CtimeSink; helperPath?: string }) {
    this.#dirs = opts.dirs;
    this.#snapshots = opts.snapshots;
    this.#helper = opts.helperPath ?? packageFile('native/build/Release/chroot-exec');
  }

  async run(req: ExecRequest, io: ExecIO, ctx: Ctx): Promise<ExecResult> {
    ctx.signal.throwIfAborted();
    refuseUnsupported(req);
    const scratch = await mkdtemp(join(this.#dirs.tmp, 'chroot-'));
    const provided: Provided[] = [];
    const created: string[] = [];
    const touched = new Map<string, { pre: BigIntStats; post?: BigIntStats; end?: BigIntStats }>();
    try {
      // No namespaces here: a RUN's private network is the host's, and the build is told once.
      req = await this.#network.apply(req, scratch, ctx);
      const provide = async (path: string, make: ((host: string, p: Provided) => Promise<void>) | undefined): Promise<void> => {
        const p = await this.#setAside(req.rootfs, path, scratch, provided.length, created, touched);
        provided.push(p);
        if (make) await atInRoot(req.rootfs, p.rel, (host) => make(host, p), { symlinks: 'none' });
      };
      await provide('/proc', undefined);
      await provide('/sys', undefined);
      await provide('/dev', makeDev);
      for (const m of req.mounts) await provide(m.destination, (host, p) => this.#mountLike(m, host, p, ctx));
      for (const [rel, t] of touched) t.post = await this.#statRel(req.rootfs, rel);
      try {
        return await this.#exec(req, io, ctx);
      } finally {
        for (const [rel, t] of touched) t.end = await this.#statRel(req.rootfs, rel);
      }
    } finally {
      const accepted: string[] = [];
      for (const p of provided.reverse()) await this.#takeBack(req.rootfs, p, accepted);
      for (const rel of created.reverse()) await atInRoot(req.rootfs, rel, (host) => rmdir(host), { symlinks: 'none' }).catch(() => undefined);
      // A directory the command left alone gets its mtime back: entries came and went only for the runtime.
      for (const [rel, t] of touched) {
        const now = await this.#statRel(req.rootfs, rel);
        if (!now || !t.post || !t.end || now.ino !== t.pre.ino || t.end.mtimeNs !== t.post.mtimeNs) continue;
        await atInRoot(req.rootfs, rel, (host) => lutimes(host, Number(t.pre.atimeNs) / 1e9, Number(t.pre.mtimeNs) / 1e9), { symlinks: 'none' });
        accepted.push(rel);
      }
      await this.#snapshots?.acceptCtime(req.rootfs, accepted);
      await rm(scratch, { recursive: true, force: true });
    }
  }

  /** No state outlives a run: the helper dies with tsbuild and kills what its command started. */
  async cleanupStale(): Promise<string[]> {
    return [];
  }

  /**
   * Makes `path`'s parent (recording what it created), resolves it to a real path in the root,
   * and moves whatever is at `path` to `scratch`.
   */
  async #setAside(
    root: string,
    path: string,
    scratch: string,
    n: number,
    created: string[],
    touched: Map<string, { pre: BigIntStats }>,
  ): Promise<Provided> {
    const parts = containerPathParts(path);
    if (parts.length === 0) throw new BuildError('RUN_FAILED', 'isolation chroot cannot mount over /');
    const leaf = parts.pop()!;
    const parentPath = parts.join('/');
    const touch = async (rel: string) => {
      if (touched.has(rel)) return;
      const pre = await this.#statRel(root, rel);
      if (pre) touched.set(rel, { pre });
    };
    // The directory that gains the first new parent is touched too.
    const firstMissing = await firstMissingDir(root, parentPath);
    if (firstMissing !== undefined) await touch(await realRel(root, await resolveInRoot(root, firstMissing)));
    await mkdirInRoot(root, parentPath, 0o755, { uid: 0, gid: 0 }, {
      onCreated: (sub) => created.push(sub),
    });
    const parentHost = await resolveInRoot(root, parentPath);
    const parentRel = await realRel(root, parentHost);
    await touch(parentRel);
    const rel = parentRel ? `${parentRel}/${leaf}` : leaf;
    const parentIno = (await lstat(parentHost, { bigint: true })).ino;
    const p: Provided = { rel, parentIno };
    await atInRoot(
      root,
      rel,
      async (host) => {
        if (!(await lstat(host).catch(() => undefined))) return;
        p.aside = join(scratch, `aside-${n}`);
        await rename(host, p.aside);
      },
      { symlinks: 'none' },
    );
    return p;
  }

  /** Puts what a mount would show at `host` (nothing is there now). */
  async #mountLike(m: BindMount, host: string, p: Provided, ctx: Ctx): Promise<void> {
    if (m.type === 'tmpfs') {
      await mkdir(host);
      await chmod(host, 0o1777);
      return;
    }
    const st = await lstat(m.source, { bigint: true });
    const rw = !m.options.includes('ro');
    if (st.isDirectory()) {
      // Ours and read-write (a cache, a throwaway copy): moved in, so writes land where runc's bind would put them.
      if (rw && isUnder(m.source, this.#dirs.root)) {
        try {
          await rename(m.source, host);
          p.movedFrom = { path: m.source, ino: st.ino };
          return;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
        }
      }
      await cloneTree(m.source, host, ctx.signal);
      return;
    }
    if (st.isFile()) return cloneEntry(m.source, st, host);
    if (st.isSocket()) {
      try {
        // A socket can't be copied: a hardlink reaches the same listener (same filesystem only).
        return await link(m.source, host);
      } catch (e) {
        throw new BuildError('RUN_FAILED', `isolation chroot cannot give RUN a mount of ${m.destination}: ${(e as Error).message}`, {
          cause: e,
          hint: 'use --isolation overlay or rootless',
        });
      }
    }
    throw new BuildError('RUN_FAILED', `isolation chroot cannot give RUN a mount of ${m.destination} from ${m.source}`, { hint: 'use --isolation overlay or rootless' });
  }

  /** Removes what the command saw at `p.rel` and puts the original back. */
  async #takeBack(root: string, p: Provided, accepted: string[]): Promise<void> {
    const parentRel = p.rel.includes('/') ? p.rel.slice(0, p.rel.lastIndexOf('/')) : '';
    const parent = await this.#statRel(root, parentRel);
    const sameParent = parent?.isDirectory() && parent.ino === p.parentIno;
    if (sameParent) {
      await atInRoot(
        root,
        p.rel,
        async (host) => {
          const st = await lstat(host, { bigint: true }).catch(() => undefined);
          if (p.movedFrom && st?.isDirectory() && st.ino === p.movedFrom.ino) {
            const back = await rename(host, p.movedFrom.path).then(() => true, () => false);
            if (back) return;
          }
          if (st) await rm(host, { recursive: true, force: true });
          if (p.aside) {
            await rename(p.aside, host);
            accepted.push(p.rel);
          }
        },
        { symlinks: 'none' },
      ).catch(() => undefined);
    }
    // The command replaced the parent (or the original could not go back): the original is gone with it.
    if (p.aside) await rm(p.aside, { recursive: true, force: true });
  }

  async #statRel(root: string, rel: string): Promise<BigIntStats | undefined> {
    return atInRoot(root, rel, (host) => lstat(host, { bigint: true }), { symlinks: 'none' }).catch(() => undefined);
  }

  async #exec(req: ExecRequest, io: ExecIO, ctx: Ctx): Promise<ExecResult> {
    const args = ['--root', req.rootfs, '--cwd', req.cwd, '--uid', String(req.uid), '--gid', String(req.gid), '--hostname', req.hostname];
    // As toRuntimeSpec: the primary gid is listed too (CVE-2023-25173).
    args.push('--groups', [...new Set([req.gid, ...req.additionalGids])].join(','));
    args.push('--caps', capMask(CHROOT_CAPS).toString(16));
    const rlimits = [...(req.rlimits?.some((r) => r.type === 'RLIMIT_NOFILE') ? [] : [{ type: 'RLIMIT_NOFILE', soft: NOFILE, hard: NOFILE }]), ...(req.rlimits ?? [])];
    for (const r of rlimits) args.push('--rlimit', `${r.type}:${r.soft}:${r.hard}`);
    for (const e of req.env) args.push('--env', e);
    args.push('--', ...req.args);

    const child = spawn(this.#helper, args, { stdio: [io.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe', 'pipe'], detached: true, env: {} });
    if (child.stdin) {
      child.stdin.on('error', () => undefined);
      io.stdin?.pipe(child.stdin);
    }
    child.stdout?.on('data', (c: Buffer) => io.onOutput(1, c));
    child.stderr?.on('data', (c: Buffer) => io.onOutput(2, c));
    let status = '';
    (child.stdio[3] as NodeJS.ReadableStream | null)?.on('data', (c: Buffer) => (status += c.toString('utf8')));
    let exited = false;
    const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
      child.on('error', (e) => {
        exited = true;
        reject(new BuildError('RUNTIME', `cannot run ${this.#helper}: ${e.message}`, { cause: e, hint: 'build it with npm run build' }));
      });
      child.on('close', (code, signal) => {
        exited = true;
        resolve({ code, signal });
      });
    });
    const onAbort = () => void killHelper(child.pid, () => exited);
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    try {
      const { code, signal } = await done;
      ctx.signal.throwIfAborted();
      const failed = /^error (.*)$/m.exec(status);
      if (failed) throw new BuildError('RUNTIME', `isolation chroot could not start the command: ${failed[1]}`);
      const exit = /^exit (\d+)$/m.exec(status);
      if (exit) return { exitCode: Number(exit[1]) };
      if (signal) return { exitCode: 128 + (osConstants.signals[signal] ?? 0), signal };
      return { exitCode: code ?? 255 };
    } finally {
      ctx.signal.removeEventListener('abort', onAbort);
    }
  }
}

/** The requests this isolation can't honour, refused up front with the reason and the way out. */
function refuseUnsupported(req: ExecRequest): void {
  const refuse = (what: string, why: string) =>
    new BuildError('RUN_FAILED', `isolation chroot cannot give ${what}: ${why}; use --isolation overlay or rootless`, { hint: 'use --isolation overlay or rootless' });
  if ((req.network as string) === 'none') throw refuse('RUN --network=none a private network', 'that needs a network namespace, which this host refuses');
  const limits = req.cgroupLimits;
  // No default limit reaches this runner (its `cgroups` is 'none'): any limit here was asked for.
  if (limits && (limits.memory || limits.cpu || limits.pids)) throw refuse('RUN resource limits', 'they need a cgroup of its own, which this host refuses');
  if (req.privileged) throw refuse('RUN --security=insecure', 'it has no sandbox to lift');
  if (req.terminal) throw refuse('a terminal', 'it runs commands without runc');
  // Any other network (the host's, or a private one that needs namespaces) is the host's here.
}

/** runc's /dev: a directory with the default devices (skipped without CAP_MKNOD), shm, pts and the fd links. */
async function makeDev(host: string): Promise<void> {
  await mkdir(host);
  await chmod(host, 0o755);
  for (const [name, major, minor] of DEVICES) {
    try {
      mknod(join(host, name), constants.S_IFCHR | 0o666, major, minor);
      await chmod(join(host, name), 0o666);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EPERM') throw e;
    }
  }
  await mkdir(join(host, 'shm'));
  await chmod(join(host, 'shm'), 0o1777);
  await mkdir(join(host, 'pts'), { mode: 0o755 });
  for (const [name, target] of DEV_LINKS) await symlink(target, join(host, name));
}

/** The first missing directory on the way to `path` inside `root`, if any. */
async function firstMissingDir(root: string, path: string): Promise<string | undefined> {
  const parts = containerPathParts(path);
  for (let i = 0; i < parts.length; i++) {
    const sub = parts.slice(0, i + 1).join('/');
    const ok = await resolveInRoot(root, sub).then(
      () => true,
      () => false,
    );
    if (!ok) return parts.slice(0, i).join('/');
  }
  return undefined;
}

/** `host` (resolved inside `root`) relative to the root's own resolved path. */
async function realRel(root: string, host: string): Promise<string> {
  return relative(await resolveInRoot(root, '/'), host);
}

function isUnder(p: string, dir: string): boolean {
  const r = relative(dir, p);
  return r !== '' && !r.startsWith('..') && !r.startsWith('/');
}

function capMask(names: readonly string[]): bigint {
  let m = 0n;
  for (const n of names) {
    const bit = CAP_BITS[n];
    if (bit !== undefined) m |= 1n << BigInt(bit);
  }
  return m;
}

/** SIGTERM makes the helper kill everything its command started; SIGKILL to its group if it lingers. */
async function killHelper(pid: number | undefined, exited: () => boolean): Promise<void> {
  if (pid === undefined) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  for (let waited = 0; !exited() && waited < 5000; waited += 25) await sleep(25);
  if (!exited()) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

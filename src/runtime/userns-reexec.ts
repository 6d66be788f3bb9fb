import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { constants, userInfo } from 'node:os';
import { BuildError } from '../errors.js';
import { readSubordinateIds, type IdRange } from './subordinate-ids.js';
import { readHostFile } from './host-file.js';

/**
 * Set in the environment of the tsbuild process re-executed inside its own user namespace, as
 * `<uid outside>:<mapping>`: it stops a second re-exec, and tells the state root and the chown
 * fallback who the caller really is and how ids are mapped.
 */
export const USERNS_ENV = 'TSBUILD_USERNS';

/**
 * How ids are mapped in the namespace. `identity`: real root without CAP_SYS_ADMIN maps all of
 * 0..2^32-2 to itself, so the store keeps real owners and is shared with root builds.
 * `subordinate`: 0 is the caller, 1..N the caller's first /etc/subuid and /etc/subgid range.
 * `single`: only 0 (the caller) is mapped; other owners in images become root.
 */
export type IdMapping = 'identity' | 'subordinate' | 'single';

/** One line of /proc/PID/uid_map: `inside outside count`. */
export interface IdMapLine {
  readonly inside: number;
  readonly outside: number;
  readonly count: number;
}

/** What decides whether tsbuild re-executes itself in a user namespace; gathered by `userNamespaceFacts`. */
export interface UsernsFacts {
  /** `USERNS_ENV` of this process: set when it already is the re-executed one. */
  readonly marker: string | undefined;
  /** The verb opens the state root (help, --version, config printing don't). */
  readonly touchesStore: boolean;
  /** The isolation asked for (isolation.ts): `overlay` and `chroot` run without a user namespace. */
  readonly isolation: 'auto' | 'overlay' | 'rootless' | 'chroot';
  readonly uid: number;
  readonly gid: number;
  readonly user: string | undefined;
  /** Effective capabilities (CapEff of /proc/self/status). */
  readonly capEff: bigint;
  /** The kernel lets this process create a user namespace (max_user_namespaces, Debian's unprivileged_userns_clone). */
  readonly userNamespaces: boolean;
  /** The caller's first subordinate id ranges, if any. */
  readonly subuid: IdRange | undefined;
  readonly subgid: IdRange | undefined;
}

export type UsernsPlan =
  | { readonly enter: false; readonly reason: string }
  | {
      readonly enter: true;
      readonly mapping: IdMapping;
      readonly uidMap: readonly IdMapLine[];
      readonly gidMap: readonly IdMapLine[];
      /** `direct`: we write /proc/PID/{uid,gid}_map (needs CAP_SETUID/SETGID); `newidmap`: newuidmap/newgidmap do. */
      readonly writer: 'direct' | 'newidmap';
      readonly warning?: string;
    };

const CAP_SETGID = 6n;
const CAP_SETUID = 7n;
const CAP_SYS_ADMIN = 21n;
const has = (caps: bigint, bit: bigint) => ((caps >> bit) & 1n) === 1n;

/**
 * Whether and how to enter a user namespace. Pure. Real root with CAP_SYS_ADMIN needs none, and
 * neither does a verb that never opens the store; everyone else gets one when the kernel allows
 * it (otherwise tsbuild runs as it is, and the isolation probe decides what still works).
 */
export function planUserNamespace(f: UsernsFacts): UsernsPlan {
  if (f.marker !== undefined) return { enter: false, reason: 'already inside the user namespace tsbuild made' };
  if (!f.touchesStore) return { enter: false, reason: 'this command does not open the store' };
  if (f.isolation === 'overlay' || f.isolation === 'chroot') return { enter: false, reason: `isolation ${f.isolation} asked for` };
  if (f.uid === 0 && has(f.capEff, CAP_SYS_ADMIN)) return { enter: false, reason: 'root with CAP_SYS_ADMIN' };
  if (!f.userNamespaces) return { enter: false, reason: 'user namespaces are disabled on this host' };
  if (f.uid === 0 && has(f.capEff, CAP_SETUID) && has(f.capEff, CAP_SETGID)) {
    // 4294967295 ids: all but (uid_t)-1, which is never a valid owner.
    const all = [{ inside: 0, outside: 0, count: 4294967295 }];
    return { enter: true, mapping: 'identity', uidMap: all, gidMap: all, writer: 'direct' };
  }
  if (f.subuid && f.subgid) {
    return {
      enter: true,
      mapping: 'subordinate',
      uidMap: [{ inside: 0, outside: f.uid, count: 1 }, { inside: 1, outside: f.subuid.start, count: f.subuid.count }],
      gidMap: [{ inside: 0, outside: f.gid, count: 1 }, { inside: 1, outside: f.subgid.start, count: f.subgid.count }],
      writer: 'newidmap',
    };
  }
  const who = f.user ?? String(f.uid);
  const missing = [f.subuid ? '' : '/etc/subuid', f.subgid ? '' : '/etc/subgid'].filter(Boolean).join(' and ');
  return {
    enter: true,
    mapping: 'single',
    uidMap: [{ inside: 0, outside: f.uid, count: 1 }],
    gidMap: [{ inside: 0, outside: f.gid, count: 1 }],
    writer: 'newidmap',
    warning:
      `tsbuild: warning: no subordinate ids for ${who} in ${missing}: only your own id is mapped, so files owned by other ids in images ` +
      `will be owned by root in the image; to fix, add a line "${who}:100000:65536" to /etc/subuid and /etc/subgid ` +
      `(e.g. sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${who})`,
  };
}

/** The user namespace this process was re-executed into, from `USERNS_ENV`; undefined outside one. */
export function enteredUserNamespace(env: NodeJS.ProcessEnv): { readonly outerUid: number; readonly mapping: IdMapping } | undefined {
  const m = /^(\d+):(identity|subordinate|single)$/.exec(env[USERNS_ENV] ?? '');
  return m ? { outerUid: Number(m[1]), mapping: m[2] as IdMapping } : undefined;
}

/** Reads what `planUserNamespace` decides on, for this process. */
export async function userNamespaceFacts(env: NodeJS.ProcessEnv, command: Pick<UsernsFacts, 'touchesStore' | 'isolation'>): Promise<UsernsFacts> {
  const uid = process.getuid!();
  const gid = process.getgid!();
  // Read on this thread: these reads, one thread-pool round trip each, came before any other
  // work of every command.
  const status = readFileSync('/proc/self/status', 'utf8');
  const capEff = BigInt('0x' + (/^CapEff:\s*([0-9a-f]+)/m.exec(status)?.[1] ?? '0'));
  const max = readHostFile('/proc/sys/user/max_user_namespaces')?.trim();
  const clone = readHostFile('/proc/sys/kernel/unprivileged_userns_clone')?.trim();
  const userNamespaces = max !== '0' && (uid === 0 || clone !== '0');
  let user: string | undefined;
  // The name is only for /etc/subuid and the message about it: real root with CAP_SYS_ADMIN
  // needs neither, and a passwd lookup (NSS) is not free.
  if (uid !== 0 || ((capEff >> CAP_SYS_ADMIN) & 1n) !== 1n) {
    try {
      user = userInfo().username;
    } catch {
      user = undefined; // no passwd entry: /etc/subuid may still name the numeric id
    }
  }
  // Only the first range is used, as buildah and podman do by default.
  const subuid = uid === 0 ? undefined : (await readSubordinateIds('/etc/subuid', { name: user, id: uid }))[0];
  const subgid = uid === 0 ? undefined : (await readSubordinateIds('/etc/subgid', { name: user, id: uid }))[0];
  return { marker: env[USERNS_ENV], ...command, uid, gid, user, capEff, userNamespaces, subuid, subgid };
}

/** `0 1000 1\n1 100000 65536\n`: the map as the kernel and newuidmap take it. */
export function formatIdMap(lines: readonly IdMapLine[]): string {
  return lines.map((l) => `${l.inside} ${l.outside} ${l.count}\n`).join('');
}

/**
 * The waiter the child runs first, inside the new namespaces (util-linux unshare execs it there):
 * it says it is ready on fd 4, blocks on fd 3 until the parent has written the id maps, then
 * restores stderr (fd 5; unshare's own errors went to the parent) and execs tsbuild, which so
 * starts as uid 0 with full capabilities in the namespace (exec before the maps would drop them).
 */
const WAITER = 'echo ready >&4; read -r go <&3; [ "$go" = go ] || exit 125; exec 2>&5 3<&- 4>&- 5>&-; exec "$@"';

/**
 * Runs this tsbuild command again inside a new user and mount namespace (as `buildah unshare`
 * does) and resolves to its exit code, when `plan` says to; the caller returns that code. The
 * child shares our stdio and terminal and process group, so a terminal's Ctrl-C reaches it
 * directly; signals sent to this process alone are passed on. A child killed by a signal is
 * mirrored by killing this process with the same signal. Resolves `undefined` (run here instead)
 * when the kernel refuses the namespace, e.g. under a seccomp profile that forbids unshare.
 */
export async function reexecInUserNamespace(plan: Extract<UsernsPlan, { enter: true }>, uid: number): Promise<number | undefined> {
  const argv = [...process.execArgv, process.argv[1]!, ...process.argv.slice(2)];
  const child = spawn('unshare', ['--user', '--mount', '--propagation', 'private', '--', 'sh', '-c', WAITER, 'sh', process.execPath, ...argv], {
    env: { ...process.env, [USERNS_ENV]: `${uid}:${plan.mapping}` },
    stdio: ['inherit', 'inherit', 'pipe', 'pipe', 'pipe', 2],
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.on('error', (e) => reject(new BuildError('RUNTIME', `cannot run unshare (util-linux) to enter a user namespace: ${e.message}`, { cause: e })));
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
  let unshareErr = '';
  child.stderr!.on('data', (b: Buffer) => (unshareErr += b.toString()));
  const [go, ready] = [child.stdio[3] as NodeJS.WritableStream, child.stdio[4] as NodeJS.ReadableStream];
  ready.resume();
  const readyOrExit = await Promise.race([
    new Promise<'ready'>((resolve) => ready.once('data', () => resolve('ready'))),
    exited.then(() => 'exited' as const),
  ]);
  if (readyOrExit === 'exited') {
    if (/unshare failed|Operation not permitted|Invalid argument|No space left/i.test(unshareErr)) return undefined;
    throw new BuildError('RUNTIME', `cannot enter a user namespace: ${unshareErr.trim() || 'unshare exited'}`);
  }

  try {
    await writeIdMaps(child.pid!, plan);
  } catch (e) {
    child.kill('SIGKILL');
    await exited;
    throw e;
  }
  if (plan.warning) process.stderr.write(plan.warning + '\n');

  // A terminal sends SIGINT/SIGQUIT/SIGHUP to its whole foreground process group, child included:
  // passing those on too would deliver them twice (and a second SIGINT means "kill at once").
  const forward = (sig: NodeJS.Signals) => {
    void inTerminalForeground().then((fg) => {
      if (sig === 'SIGTERM' || !fg) child.kill(sig);
    });
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];
  for (const s of signals) process.on(s, forward);
  go.end('go\n');
  try {
    const { code, signal } = await exited;
    if (signal) {
      for (const s of signals) process.off(s, forward);
      process.kill(process.pid, signal);
      return 128 + (constants.signals[signal] ?? 0);
    }
    return code ?? 1;
  } finally {
    for (const s of signals) process.off(s, forward);
  }
}

async function writeIdMaps(pid: number, plan: Extract<UsernsPlan, { enter: true }>): Promise<void> {
  if (plan.writer === 'direct') {
    await writeFile(`/proc/${pid}/uid_map`, formatIdMap(plan.uidMap));
    await writeFile(`/proc/${pid}/gid_map`, formatIdMap(plan.gidMap));
    return;
  }
  const flat = (lines: readonly IdMapLine[]) => lines.flatMap((l) => [String(l.inside), String(l.outside), String(l.count)]);
  for (const [tool, map, file] of [['newuidmap', plan.uidMap, '/etc/subuid'], ['newgidmap', plan.gidMap, '/etc/subgid']] as const) {
    await new Promise<void>((resolve, reject) => {
      execFile(tool, [String(pid), ...flat(map)], (err, _out, stderr) => {
        if (!err) return resolve();
        const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
        reject(
          new BuildError('RUNTIME', `${tool} failed: ${missing ? 'not installed' : String(stderr).trim() || err.message}`, {
            hint: missing ? 'install the uidmap package (newuidmap, newgidmap)' : `check your line in ${file} (it must not overlap your own id or another user's range)`,
            cause: err,
          }),
        );
      });
    });
  }
}

/** True when this process is in the foreground process group of its controlling terminal. */
async function inTerminalForeground(): Promise<boolean> {
  const stat = await readFile('/proc/self/stat', 'utf8').catch(() => '');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 5 (pgrp) and 8 (tpgid), counted from 3 after the command name.
  return f.length > 5 && f[2] === f[5];
}

/**
 * The hook at the start of the CLI: re-executes this command in a user namespace when
 * `planUserNamespace` says so and resolves to its exit code; `undefined` means go on here.
 */
export async function runInUserNamespaceIfNeeded(command: Pick<UsernsFacts, 'touchesStore' | 'isolation'>, env: NodeJS.ProcessEnv): Promise<number | undefined> {
  const facts = await userNamespaceFacts(env, command);
  const plan = planUserNamespace(facts);
  if (!plan.enter) return undefined;
  return reexecInUserNamespace(plan, facts.uid);
}

/**
 * Creates a non-root caller's state root private (0700, as podman's storage): the store holds
 * files of every image built, some of them meant to be readable only by their owners inside.
 * An existing root is left as it is.
 */
export async function createStateRoot(root: string, env: NodeJS.ProcessEnv): Promise<void> {
  const uid = enteredUserNamespace(env)?.outerUid ?? process.getuid!();
  if (uid === 0) return;
  await mkdir(root, { recursive: true, mode: 0o700 });
}

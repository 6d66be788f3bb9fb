import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { readHostFile } from './host-file.js';
import { release } from 'node:os';
import { join } from 'node:path';
import { enteredUserNamespace } from './userns-reexec.js';

/** What the environment lets tsbuild do, as far as choosing an isolation mode needs to know. */
export interface IsolationProbe {
  readonly euid: number;
  /** CAP_SYS_ADMIN in the effective set (of whatever user namespace we are in). */
  readonly capSysAdmin: boolean;
  /** CAP_SYS_CHROOT in the effective set. */
  readonly capSysChroot: boolean;
  /** Our user namespace is not the initial one (its uid_map is not the identity of all ids). */
  readonly inUserNamespace: boolean;
  /** A seccomp filter is installed on us (Docker's and Kubernetes' default profiles are). */
  readonly seccompFilter: boolean;
  /** Signs of running in a container (/.dockerenv, /run/.containerenv, $container, a kubepods cgroup). */
  readonly inContainer: boolean;
  /** A new user namespace can be made, or why not. */
  readonly userNamespaces: true | string;
  /** overlayfs mounts with `userxattr` as root of a new user namespace (or of ours), or why not. */
  readonly overlayInUserNamespace: true | string;
  readonly kernel: string;
}

/** What a cached probe is valid for: a change of any of these probes again. */
interface ProbeKey {
  readonly kernel: string;
  readonly euid: number;
  readonly capEff: string;
  readonly seccomp: string;
  readonly uidMap: string;
}

const CAP_SYS_CHROOT = 18n;
const CAP_SYS_ADMIN = 21n;
const CACHE_FILE = 'isolation-probe.json';
const MAX_CACHED = 8;

/**
 * Probes the environment once per (kernel, uid, capabilities, seccomp mode, user namespace) and
 * caches the answer in `<root>/isolation-probe.json`: the namespace and mount tests spawn
 * `unshare` and `mount` (~30 ms), the cached read takes well under one.
 */
export async function probeIsolation(root: string, tmp: string): Promise<IsolationProbe> {
  // The cached answer is read on this thread: three reads, one thread-pool round trip each
  // (four for the cache file), came before every build's first step.
  const status = readFileSync('/proc/self/status', 'utf8');
  const capEff = /^CapEff:\s*([0-9a-f]+)/m.exec(status)?.[1] ?? '0';
  const seccomp = /^Seccomp:\s*(\d)/m.exec(status)?.[1] ?? '0';
  // Root without CAP_SYS_ADMIN gets an identity map in the namespace tsbuild enters (userns-reexec.ts),
  // which reads as the initial one: the marker tells them apart, in the cache key too.
  const entered = enteredUserNamespace(process.env) !== undefined;
  const uidMap = (readHostFile('/proc/self/uid_map') ?? '').trim().split(/\s+/).join(' ') + (entered ? ' (entered)' : '');
  const key: ProbeKey = { kernel: release(), euid: process.geteuid?.() ?? -1, capEff, seccomp, uidMap };
  const cacheFile = join(root, CACHE_FILE);
  const id = JSON.stringify(key);
  // One entry per environment: the outer process and the one in tsbuild's user namespace share a root.
  let cached: Record<string, IsolationProbe>;
  try {
    cached = JSON.parse(readFileSync(cacheFile, 'utf8')) as Record<string, IsolationProbe>;
  } catch {
    cached = {};
  }
  const hit = cached[id];
  if (hit) return hit;

  const bits = BigInt(`0x${capEff}`);
  const inUserNamespace = entered || uidMap !== '0 0 4294967295';
  const capSysAdmin = ((bits >> CAP_SYS_ADMIN) & 1n) === 1n;
  const probe: IsolationProbe = {
    euid: key.euid,
    capSysAdmin,
    capSysChroot: ((bits >> CAP_SYS_CHROOT) & 1n) === 1n,
    inUserNamespace,
    seccompFilter: seccomp === '2',
    inContainer: await inContainer(),
    ...(await probeNamespaces(tmp, inUserNamespace && capSysAdmin)),
    kernel: key.kernel,
  };
  await mkdir(root, { recursive: true });
  const part = `${cacheFile}.${process.pid}`;
  const kept = Object.entries(cached).slice(-(MAX_CACHED - 1));
  await writeFile(part, JSON.stringify(Object.fromEntries([...kept, [id, probe]])));
  await rename(part, cacheFile);
  return probe;
}

/**
 * One `unshare` tells both whether a user namespace can be made and whether overlayfs mounts in
 * it. Inside tsbuild's own user namespace (root there, with CAP_SYS_ADMIN) the mount is tried directly.
 */
async function probeNamespaces(tmp: string, alreadyInside: boolean): Promise<Pick<IsolationProbe, 'userNamespaces' | 'overlayInUserNamespace'>> {
  await mkdir(tmp, { recursive: true });
  const dir = await mkdtemp(join(tmp, 'probe-'));
  try {
    for (const d of ['lower', 'upper', 'work', 'merged']) await mkdir(join(dir, d));
    const opts = `lowerdir=${dir}/lower,upperdir=${dir}/upper,workdir=${dir}/work,userxattr,redirect_dir=nofollow,metacopy=off,index=off`;
    // The mount lives only in the throwaway mount namespace: nothing to unmount afterwards.
    const script = `mount -t overlay overlay -o '${opts}' '${dir}/merged' || exit 3`;
    const args = alreadyInside ? ['--mount', 'sh', '-c', script] : ['--user', '--map-root-user', '--mount', 'sh', '-c', script];
    const r = await run('unshare', args);
    if (r.code === 0) return { userNamespaces: true, overlayInUserNamespace: true };
    if (r.code === 3) return { userNamespaces: true, overlayInUserNamespace: `overlay mount refused: ${lastLine(r.stderr)}` };
    const why = `unshare ${alreadyInside ? '--mount' : '--user'}: ${lastLine(r.stderr)}`;
    return { userNamespaces: alreadyInside ? true : why, overlayInUserNamespace: why };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function inContainer(): Promise<boolean> {
  if (process.env.container) return true;
  for (const f of ['/.dockerenv', '/run/.containerenv']) if (await readFile(f).then(() => true, (e: NodeJS.ErrnoException) => e.code === 'EISDIR')) return true;
  const cgroup = await readFile('/proc/1/cgroup', 'utf8').catch(() => '');
  return /docker|kubepods|containerd|libpod/.test(cgroup);
}

function run(cmd: string, args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 10_000 }, (err, _out, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 127) : 0;
      resolve({ code, stderr: String(stderr) || (err ? err.message : '') });
    });
  });
}

function lastLine(s: string): string {
  return s.trim().split('\n').pop() ?? '';
}

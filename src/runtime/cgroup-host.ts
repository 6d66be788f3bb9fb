import { access, readFile } from 'node:fs/promises';
import { constants } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, posix } from 'node:path';

/** The controllers RUN limits use. */
export type Controller = 'memory' | 'cpu' | 'cpuset' | 'pids';
export const CONTROLLERS: readonly Controller[] = ['memory', 'cpu', 'cpuset', 'pids'];

/**
 * `v1`: one hierarchy per controller; `hybrid`: v1 controllers plus an (empty) unified tree at
 * /sys/fs/cgroup/unified, which runc treats as v1; `v2`: the unified tree at /sys/fs/cgroup.
 */
export type CgroupLayout = 'v1' | 'hybrid' | 'v2' | 'none';

/** What this host's cgroups offer a RUN, seen from where runc will create its cgroup. */
export interface CgroupHost {
  readonly layout: CgroupLayout;
  /** Controllers the RUN's cgroup can be limited by, each with the directory runc creates it under. */
  readonly parents: ReadonlyMap<Controller, string>;
  /** A memory-plus-swap limit can be set (v1 memory.memsw.*, v2 memory.swap.max). */
  readonly swapAccounting: boolean;
  /** CPUs and memory nodes the RUN's cgroup may be given, e.g. `0-3`. */
  readonly cpus: string;
  readonly mems: string;
}

/**
 * Where runc (cgroupfs driver, relative cgroupsPath) puts a container's cgroup, per controller:
 * with v1 under our own cgroup of each hierarchy, with v2 beside our own cgroup (runc takes its
 * parent: a cgroup with processes in it can't delegate controllers). Pure: parses
 * /proc/self/mountinfo and /proc/self/cgroup. Controllers without a hierarchy are absent.
 */
export function cgroupParents(mountinfo: string, selfCgroup: string): { layout: CgroupLayout; parents: Map<Controller, string> } {
  const mounts = mountinfo.split('\n').flatMap((line) => {
    const [pre, post] = line.split(' - ');
    if (!pre || !post) return [];
    const f = pre.split(' ');
    const [fstype, , superOpts] = post.split(' ');
    return fstype === 'cgroup' || fstype === 'cgroup2' ? [{ root: unescape(f[3]!), point: unescape(f[4]!), fstype, opts: (superOpts ?? '').split(',') }] : [];
  });
  const own = new Map<string, string>();
  for (const line of selfCgroup.split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (m) for (const c of m[1] === '' ? [''] : m[1]!.split(',')) own.set(c, m[2]!);
  }
  const parents = new Map<Controller, string>();
  const unified = mounts.find((m) => m.fstype === 'cgroup2' && m.point === '/sys/fs/cgroup');
  if (unified) {
    const path = own.get('');
    if (path !== undefined) {
      const dir = join(unified.point, posix.relative(unified.root, posix.dirname(path)));
      for (const c of CONTROLLERS) parents.set(c, dir);
    }
    return { layout: 'v2', parents };
  }
  for (const c of CONTROLLERS) {
    const mount = mounts.find((m) => m.fstype === 'cgroup' && m.opts.includes(c));
    const path = own.get(c);
    if (!mount || path === undefined) continue;
    // A cgroup namespace or a bind mount shows the hierarchy from below its root.
    const rel = path === mount.root || path.startsWith(mount.root === '/' ? '/' : `${mount.root}/`) ? posix.relative(mount.root, path) : path;
    parents.set(c, join(mount.point, rel));
  }
  if (parents.size === 0 && !mounts.some((m) => m.fstype === 'cgroup')) return { layout: 'none', parents };
  return { layout: mounts.some((m) => m.fstype === 'cgroup2') ? 'hybrid' : 'v1', parents };
}

/** Reads the host's cgroup setup. Controllers runc could not use for a RUN are left out. */
export async function probeCgroupHost(): Promise<CgroupHost> {
  // Unreadable (no /proc): no cgroups to use, which only the limits asked for mind.
  const [mountinfo, self] = await Promise.all([readFirst(['/proc/self/mountinfo']), readFirst(['/proc/self/cgroup'])]).then((r) => r.map((t) => t ?? ''));
  const { layout, parents } = cgroupParents(mountinfo, self);
  const usable = new Map<Controller, string>();
  for (const [c, dir] of parents) if (await controllerUsable(layout, c, dir)) usable.set(c, dir);
  const memory = usable.get('memory');
  const swapAccounting =
    memory !== undefined &&
    (layout === 'v2'
      ? // The top cgroup has no memory.swap.max: look at our own cgroup too.
        (await exists(join(memory, 'memory.swap.max'))) || (await exists(join(memory, posix.basename(ownV2(self)), 'memory.swap.max')))
      : await exists(join(memory, 'memory.memsw.limit_in_bytes')));
  const cpuset = usable.get('cpuset');
  const online = (await readFirst(['/sys/devices/system/cpu/online'])) ?? `0-${availableParallelism() - 1}`;
  const cpus = (cpuset && (await readFirst(layout === 'v2' ? [join(cpuset, 'cpuset.cpus.effective')] : [join(cpuset, 'cpuset.effective_cpus'), join(cpuset, 'cpuset.cpus')]))) || online;
  const mems = (cpuset && (await readFirst(layout === 'v2' ? [join(cpuset, 'cpuset.mems.effective')] : [join(cpuset, 'cpuset.effective_mems'), join(cpuset, 'cpuset.mems')]))) || '0';
  return { layout, parents: usable, swapAccounting, cpus, mems };
}

/** v1: the hierarchy is writable here. v2: the parent delegates the controller, or can (no processes in it). */
async function controllerUsable(layout: CgroupLayout, c: Controller, dir: string): Promise<boolean> {
  if (!(await access(dir, constants.W_OK).then(() => true, () => false))) return false;
  if (layout !== 'v2') return true;
  const words = async (f: string) => ((await readFirst([join(dir, f)])) ?? '').split(/\s+/);
  if ((await words('cgroup.subtree_control')).includes(c)) return true;
  // The top cgroup may hold processes and still delegate.
  return (await words('cgroup.controllers')).includes(c) && (dir === '/sys/fs/cgroup' || (await readFirst([join(dir, 'cgroup.procs')])) === '');
}

function ownV2(selfCgroup: string): string {
  return /^0::(.*)$/m.exec(selfCgroup)?.[1] ?? '/';
}

async function readFirst(files: readonly string[]): Promise<string | undefined> {
  for (const f of files) {
    const text = await readFile(f, 'utf8').catch(() => undefined);
    if (text !== undefined) return text.trim();
  }
  return undefined;
}

function exists(p: string): Promise<boolean> {
  return access(p).then(
    () => true,
    () => false,
  );
}

/** mountinfo escapes space, tab, newline and backslash as octal. */
function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** `0-2,5` → how many CPUs (or nodes) it names. */
export function countList(list: string): number {
  return expandList(list).size;
}

/** `0-2,5` → {0,1,2,5}. */
export function expandList(list: string): Set<number> {
  const out = new Set<number>();
  for (const part of list.split(',').filter(Boolean)) {
    const [lo, hi] = part.split('-').map(Number);
    for (let i = lo!; i <= (hi ?? lo!); i++) out.add(i);
  }
  return out;
}

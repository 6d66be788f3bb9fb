import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Cgroup directories on the host named by `/proc/self/cgroup` lines that a RUN printed (no
 * cgroup namespace: its paths are the host's). Read independently of src/runtime: from the
 * mount table, each v1 controller's hierarchy or the cgroup2 tree. Only a RUN's own cgroups count
 * (named `tsbuild-<hex>`, as the runc container).
 */
export function runCgroupDirs(output: string): string[] {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .flatMap((l) => {
      const [pre, post] = l.split(' - ');
      const [fstype, , opts] = (post ?? '').split(' ');
      return fstype === 'cgroup' || fstype === 'cgroup2' ? [{ point: pre!.split(' ')[4]!, fstype, opts: (opts ?? '').split(',') }] : [];
    });
  const dirs = new Set<string>();
  for (const m of output.matchAll(/^(?:.*\s)?\d+:([^:\s]*):(\/\S*tsbuild-[0-9a-f]{20})$/gm)) {
    const [ctrls, path] = [m[1]!, m[2]!];
    const mount = ctrls === '' ? mounts.find((x) => x.fstype === 'cgroup2') : mounts.find((x) => x.fstype === 'cgroup' && x.opts.includes(ctrls.split(',')[0]!));
    if (mount) dirs.add(join(mount.point, path));
  }
  return [...dirs];
}

/** Cgroups of RUNs (`tsbuild-*`) under this process's own memory cgroup (v1/hybrid: where tsbuild puts them; ours alone). */
export function leftoverMemoryCgroups(): string[] {
  const own = /^\d+:(?:[^:]*,)?memory(?:,[^:]*)?:(.*)$/m.exec(readFileSync('/proc/self/cgroup', 'utf8'))?.[1];
  const dir = own === undefined ? undefined : join('/sys/fs/cgroup/memory', own);
  if (!dir || !existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((n) => n.startsWith('tsbuild-'))
    .map((n) => join(dir, n));
}

/** The host's layout: `v2` (unified), `hybrid` or `v1`. */
export function cgroupLayout(): 'v1' | 'hybrid' | 'v2' {
  const info = readFileSync('/proc/self/mountinfo', 'utf8');
  if (/ \/sys\/fs\/cgroup \S+ .* - cgroup2 /.test(info)) return 'v2';
  return / - cgroup2 /.test(info) ? 'hybrid' : 'v1';
}

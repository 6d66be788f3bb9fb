import type { Stats } from 'node:fs';
import { lstat, readlink, realpath, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { BuildError } from '../errors.js';

/**
 * What tsbuild writes at a host path a user names: a whole tree (`--root`, `type=local`,
 * `type=oci,tar=false`, `export -o`, `--cache-to type=local`) or one file (archives, `save -o`,
 * `--iidfile`, `--metadata-file`).
 */
export type OutputKind = 'tree' | 'file';

/**
 * Trees that hold the kernel's interfaces (/proc, /sys, /dev) or the operating system itself
 * (its programs, libraries, boot files and configuration, owned by the package manager).
 * Nothing tsbuild writes belongs anywhere in them: a file there replaces one the system runs
 * on, and a directory there is either meaningless (proc, sysfs) or mixes an image's files with
 * the host's. /usr/local and /usr/src are the administrator's, not the distribution's, so they
 * are left out (as system directories themselves, below).
 */
export const KERNEL_TREES = ['/proc', '/sys', '/dev'];
const OFF_LIMITS_TREES = [...KERNEL_TREES, '/boot', '/etc', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32', '/usr'];
const OFF_LIMITS_EXCEPT = ['/usr/local', '/usr/src'];

/**
 * Directories whose own entries are the host's: writing a tree into one of them (an image's
 * bin/, etc/, tmp/… beside the host's, or its root directory's mode on /tmp) wrecks it, though
 * their subdirectories are ordinary places (/var/lib/tsbuild is the default root, /root/out or
 * /tmp/out a fine dest). The FHS top level and the well-known directories right below /var,
 * /usr/local and /run. /mnt and /media are left out: they are where a user mounts a disk to
 * fill.
 */
const SYSTEM_DIRS = new Set([
  '/',
  ...['bin', 'boot', 'dev', 'etc', 'home', 'lib', 'lib32', 'lib64', 'libx32', 'opt', 'proc', 'root', 'run', 'sbin', 'srv', 'sys', 'tmp', 'usr', 'var'].map((d) => `/${d}`),
  ...['backups', 'cache', 'lib', 'local', 'lock', 'log', 'mail', 'opt', 'run', 'spool', 'tmp'].map((d) => `/var/${d}`),
  ...['local', 'src'].map((d) => `/usr/${d}`),
  ...['bin', 'etc', 'include', 'lib', 'sbin', 'share', 'src'].map((d) => `/usr/local/${d}`),
  ...['lock', 'user'].map((d) => `/run/${d}`),
]);

/** Whether `path` is `dir` or below it. */
export const under = (path: string, dir: string) => path === dir || path.startsWith(dir + '/');

/**
 * Why tsbuild must not write `kind` at `resolved` (an absolute path with every symlink of its
 * existing part resolved), or undefined when it may. `home` is the user's home directory, which
 * a tree must not be poured into either (nor any /home/NAME).
 */
export function refusalReason(resolved: string, kind: OutputKind, home?: string): string | undefined {
  if (SYSTEM_DIRS.has(resolved)) return `${resolved} is a system directory`;
  const tree = OFF_LIMITS_TREES.find((d) => under(resolved, d));
  if (tree && !OFF_LIMITS_EXCEPT.some((d) => under(resolved, d))) {
    return `${resolved} is inside ${tree}, which holds ${KERNEL_TREES.includes(tree) ? 'kernel interfaces' : "the operating system's own files"}`;
  }
  if (kind === 'tree' && (dirname(resolved) === '/home' || (home !== undefined && resolved === home))) return `${resolved} is a home directory`;
  return undefined;
}

/**
 * Refuses (a USAGE error naming `flag`) to write at `path` when it resolves, symlinks followed,
 * into a place `refusalReason` rules out. Called before any work starts, so a refused
 * destination has nothing written to it. A file output may still be an existing pipe, socket,
 * terminal or /dev/null (`--iidfile /dev/stdout`): those are streams the user reads, not files
 * replaced.
 */
export async function checkOutputDest(path: string, kind: OutputKind, flag: string, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  if (kind === 'file' && isStream(await stat(path).catch(() => undefined))) return;
  const resolved = await resolveHostPath(absolute(path), flag);
  const home = env.HOME ? await resolveHostPath(absolute(env.HOME), flag).catch(() => undefined) : undefined;
  const why = refusalReason(resolved, kind, home);
  if (why) {
    throw new BuildError('USAGE', `${flag} ${path}: refusing to write there: ${why}`, {
      hint: kind === 'tree' ? 'name a directory of its own, e.g. ./out' : 'name a file in a directory of your own, e.g. ./image.tar',
    });
  }
}

/**
 * The host path `abs` names once every symlink in it is followed, including a dangling last
 * one (writing through it would create its target). Components that do not exist yet are
 * appended as they are.
 */
export async function resolveHostPath(abs: string, flag: string, hops = 0): Promise<string> {
  try {
    return await realpath(abs);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw new BuildError('USAGE', `${flag} ${abs}: too many levels of symbolic links`);
    if (code !== 'ENOENT' && code !== 'ENOTDIR') throw e;
  }
  const st = await lstat(abs).catch(() => undefined);
  if (st?.isSymbolicLink()) {
    if (hops >= 40) throw new BuildError('USAGE', `${flag} ${abs}: too many levels of symbolic links`);
    return resolveHostPath(absolute(await readlink(abs), dirname(abs)), flag, hops + 1);
  }
  const parent = dirname(abs);
  if (parent === abs) return abs;
  return join(await resolveHostPath(parent, flag, hops), basename(abs));
}

/**
 * `path` made absolute without the lexical clean-up path.resolve does: the kernel resolves
 * `link/..` to the parent of the link's target, not to the directory holding the link.
 */
export function absolute(path: string, base = process.cwd()): string {
  return isAbsolute(path) ? path : `${base}/${path}`;
}

/** Linux character devices a user names to read output from: /dev/null (1:3), ttys (4, 5) and ptys (136–143). */
function isStream(st: Stats | undefined): boolean {
  if (!st) return false;
  if (st.isFIFO() || st.isSocket()) return true;
  if (!st.isCharacterDevice()) return false;
  const major = Math.floor(st.rdev / 256) & 0xfff;
  const minor = st.rdev & 0xff;
  return (major === 1 && minor === 3) || major === 4 || major === 5 || (major >= 136 && major <= 143);
}

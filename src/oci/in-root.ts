import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { chmod, lstat, mkdir, readlink, stat } from 'node:fs/promises';
import { posix } from 'node:path';
import { BuildError } from '../errors.js';
import { openInRootFd, type ResolveMode } from './native-fs.js';
import { lchownMapped } from './lchown-mapped.js';

/**
 * The one way tsbuild touches a path inside an untrusted tree: a rootfs, an upperdir, a layer
 * being applied, a cache mount, a context, an output directory. Such a tree may hold symlinks
 * (absolute or with `..`) that point anywhere on the host, and a RUN may have planted them
 * after tsbuild last looked, so no path inside it is ever joined to its root and used as is.
 *
 * Every component is resolved inside `root` by the kernel (openat2 with RESOLVE_IN_ROOT, or a
 * descriptor-by-descriptor walk where openat2 is refused; see native/fsx.c): symlinks are
 * followed as they would be after `chroot(root)`, never out of it. The resolved directory is
 * held open and handed to the caller as `/proc/self/fd/N/…`, so what the caller acts on is the
 * object that was resolved, even if the tree changes meanwhile.
 */

export interface InRootOptions {
  /**
   * `chroot` (default): symlinks are followed as inside a container whose root is `root`.
   * `none`: any symlink on the way fails with ELOOP; for trees tsbuild itself lays out (an
   * upperdir, a layer directory), where a symlink parent can only be planted.
   */
  readonly symlinks?: 'chroot' | 'none';
  /** Tests only: force the kernel's openat2 or the fallback walk. */
  readonly mode?: ResolveMode;
}

/** Lexically cleaned components of a container path: `.`, empty parts and leading `..` dropped. */
export function containerPathParts(path: string): string[] {
  if (path.includes('\0')) throw new BuildError('INVALID_INSTRUCTION', `path ${JSON.stringify(path)} contains a NUL byte`);
  return posix
    .normalize(`/${path}`)
    .split('/')
    .filter((c) => c !== '' && c !== '.' && c !== '..');
}

/** An O_PATH descriptor for `parts` resolved inside root (the final component followed unless `nofollow`). */
function openParts(root: string, parts: readonly string[], nofollow: boolean, opts: InRootOptions): number {
  return openInRootFd(root, parts.length ? parts.join('/') : '.', nofollow, opts.symlinks === 'none', opts.mode ?? 'auto');
}

/**
 * Runs `fn` with a host path for `path` inside `root` whose parent directory is resolved in
 * the root and held open, and whose last component is a plain name that is not followed: use
 * it with calls that act on a link itself (lstat, unlink, rmdir, rm, rename, mkdir, symlink,
 * link, mknod, lchown, lutimes, lsetxattr, or open with O_NOFOLLOW/O_EXCL). The path is valid
 * only until `fn` settles. For the root itself (`/`) it names the root directory.
 * A missing parent throws ENOENT, one that is not a directory ENOTDIR.
 */
export async function atInRoot<T>(root: string, path: string, fn: (host: string) => Promise<T> | T, opts: InRootOptions = {}): Promise<T> {
  const parts = containerPathParts(path);
  const leaf = parts.pop();
  const fd = openParts(root, parts, false, opts);
  try {
    return await fn(`/proc/self/fd/${fd}/${leaf ?? '.'}`);
  } finally {
    closeSync(fd);
  }
}

/**
 * Runs `fn` with a host path naming the object `path` resolves to inside `root`, the last
 * component followed too: use it to read (stat, readFile, readdir, open). For a directory the
 * path ends in `/.` and works with every call, and with names below it that are themselves
 * never followed. For anything else it is a /proc magic link, so `lstat` on it describes the
 * link, not the object: use `stat`.
 */
export async function resolvedInRoot<T>(root: string, path: string, fn: (host: string) => Promise<T> | T, opts: InRootOptions = {}): Promise<T> {
  const fd = openParts(root, containerPathParts(path), false, opts);
  try {
    // A directory is named through `/.`, so that l* calls (lsetxattr, lutimes) reach the
    // directory rather than the /proc link, and names below it resolve from it.
    return await fn(fstatSync(fd).isDirectory() ? `/proc/self/fd/${fd}/.` : `/proc/self/fd/${fd}`);
  } finally {
    closeSync(fd);
  }
}

/**
 * The host path of the existing object `path` resolves to inside `root` (every component,
 * the last too, resolved in the kernel), checked to lie inside `root`; ENOENT when it does not
 * exist. For what must outlive one call and is only read: a mount source handed to runc, a
 * tree to copy from. Use it only on trees nothing writes into meanwhile (a mounted snapshot,
 * the context); never to name something to create or write: a dangling symlink there would be
 * followed on the host. To write, use atInRoot (or mkdirInRoot) instead.
 */
export async function resolveInRoot(root: string, path: string, opts: InRootOptions = {}): Promise<string> {
  const rootReal = await readlinkOfFd(openParts(root, [], false, opts));
  const host = await readlinkOfFd(openParts(root, containerPathParts(path), false, opts));
  if (host !== rootReal && !host.startsWith(rootReal === '/' ? '/' : `${rootReal}/`)) {
    // Cannot happen with RESOLVE_IN_ROOT; a bind mount inside the tree could do it.
    throw new BuildError('PATH_ESCAPES', `${path} resolves to ${host}, outside ${root}`);
  }
  return host;
}

/**
 * Creates directory `path` and its missing parents inside `root`, as `mkdir -p` resolved in
 * a chroot does in BuildKit (continuity's RootPath, then MkdirAll): an existing symlink on
 * the way is followed inside the root, and a dangling one gets its target made there. New
 * directories get `mode` (not narrowed by the umask) and `owner`, and are reported to
 * `onCreated`. Throws BuildError naming `path` when a component exists and is not a
 * directory; with `symlinks: 'none'` a link on the way fails with ELOOP.
 */
export async function mkdirInRoot(
  root: string,
  path: string,
  mode: number,
  owner?: { uid: number; gid: number },
  opts: InRootOptions & { readonly onCreated?: (path: string) => void } = {},
  links = 0,
): Promise<void> {
  const parts = containerPathParts(path);
  for (let i = 1; i <= parts.length; i++) {
    const sub = parts.slice(0, i).join('/');
    const dangling = await atInRoot(
      root,
      sub,
      async (host) => {
        const st = await lstat(host).catch(() => undefined);
        if (st?.isDirectory()) return undefined;
        if (st?.isSymbolicLink()) {
          if (opts.symlinks === 'none') throw Object.assign(new Error(`/${sub} is a symbolic link`), { code: 'ELOOP' });
          const target = await resolvedInRoot(root, sub, (h) => stat(h), opts).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? null : undefined));
          if (target?.isDirectory()) return undefined;
          if (target === null) return readlink(host);
        }
        if (st) throw new BuildError('INVALID_INSTRUCTION', `cannot create directory /${sub}: a file of that name exists`);
        await mkdir(host, { mode });
        if (owner) await lchownMapped(host, owner.uid, owner.gid);
        await chmod(host, mode); // after chown (which may clear set-id bits), and never narrowed by the umask
        opts.onCreated?.(sub);
        return undefined;
      },
      opts,
    );
    if (dangling === undefined) continue;
    if (links >= MAX_LINKS) throw new BuildError('INVALID_INSTRUCTION', `cannot create directory /${sub}: too many levels of symbolic links`);
    await mkdirInRoot(root, posix.isAbsolute(dangling) ? dangling : posix.join('/', posix.dirname(sub), dangling), mode, owner, opts, links + 1);
  }
}

/**
 * The container path `path` names once every symlink on it, the last component too, is
 * followed inside `root` (continuity's RootPath, which BuildKit's copy resolves its destination
 * with): a dangling link gives the path of its missing target, for the caller to create there
 * with atInRoot or mkdirInRoot. Only lstat and readlink are done here, each through atInRoot.
 */
export async function followInRoot(root: string, path: string): Promise<string> {
  let parts = containerPathParts(path);
  let links = 0;
  for (let i = 0; i < parts.length; i++) {
    const sub = parts.slice(0, i + 1).join('/');
    const st = await atInRoot(root, sub, async (host) => {
      const st = await lstat(host).catch(() => undefined);
      return st?.isSymbolicLink() ? { link: await readlink(host) } : st ? 'present' : 'missing';
    }).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT' || e.code === 'ENOTDIR') return 'missing' as const;
      throw e;
    });
    if (st === 'missing') break; // nothing below exists either
    if (st === 'present') continue;
    if (++links > MAX_LINKS) throw new BuildError('INVALID_INSTRUCTION', `cannot resolve /${parts.join('/')}: too many levels of symbolic links`);
    const from = posix.isAbsolute(st.link) ? '/' : `/${parts.slice(0, i).join('/')}`;
    parts = [...containerPathParts(posix.join(from, st.link)), ...parts.slice(i + 1)];
    i = -1; // the link's target may hold links itself: walk again from the top
  }
  return `/${parts.join('/')}`;
}

/** As the kernel's limit on links followed in one lookup. */
const MAX_LINKS = 40;

/** The host path an O_PATH descriptor names (its /proc link), closing the descriptor. */
async function readlinkOfFd(fd: number): Promise<string> {
  try {
    return await readlink(`/proc/self/fd/${fd}`);
  } finally {
    closeSync(fd);
  }
}

/**
 * Reads a file that a build input may have made a symlink (the Dockerfile, a .dockerignore),
 * resolved inside its own directory as BuildKit reads it from the directory it transferred:
 * a link can name a sibling or something below, never a file elsewhere on the host, whose
 * text would otherwise show in error snippets. Only a regular file is read (a fifo or a device
 * would block or never end), and at most `maxBytes`: errors with code EINVAL or EFBIG say so.
 * Synchronous for the error renderer; these files are small.
 */
export function readFileInOwnDir(path: string, maxBytes: number): string {
  return readRegular(openInRootFd(posix.dirname(path), posix.basename(path), false, false, 'auto'), path, maxBytes);
}

/**
 * Reads the small file `path` of `root` (resolved as resolvedInRoot resolves it) on the calling
 * thread: only a regular file, at most `maxBytes`; errors with code EINVAL or EFBIG say so,
 * and ENOENT or ENOTDIR that it is missing. For a rootfs's /etc/passwd and /etc/group before
 * each RUN, where the thread pool's open, stat, read and close cost four round trips each.
 */
export function readFileInRoot(root: string, path: string, maxBytes: number, opts: InRootOptions = {}): string {
  return readRegular(openParts(root, containerPathParts(path), false, opts), path, maxBytes);
}

/** Reads the regular file the O_PATH descriptor `fd` holds (at most `maxBytes`), and closes `fd`. */
function readRegular(fd: number, path: string, maxBytes: number): string {
  try {
    if (!fstatSync(fd).isFile()) throw Object.assign(new Error(`${path} is not a regular file`), { code: 'EINVAL' });
    const rfd = openSync(`/proc/self/fd/${fd}`, 'r');
    try {
      // Unfilled: only the pages read into are ever touched.
      const buf = Buffer.allocUnsafe(maxBytes + 1);
      let len = 0;
      for (let n = 1; n > 0 && len < buf.length; len += n) n = readSync(rfd, buf, len, buf.length - len, null);
      if (len > maxBytes) throw Object.assign(new Error(`${path} is larger than ${maxBytes} bytes`), { code: 'EFBIG' });
      return buf.toString('utf8', 0, len);
    } finally {
      closeSync(rfd);
    }
  } finally {
    closeSync(fd);
  }
}

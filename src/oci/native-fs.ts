import { createRequire } from 'node:module';
import { packageFile } from '../package-file.js';

/**
 * Typed access to native/fsx.c: mknod and xattr syscalls, which Node's fs lacks.
 *
 * Why native: overlay whiteouts are char devices 0:0 and the opaque marker, file
 * capabilities and user xattrs are extended attributes. A layer can carry thousands of them,
 * and spawning `setfattr`/`mknod` per file costs about a millisecond each, a syscall
 * microseconds. All calls are synchronous and act on the link itself, never following a
 * final symlink. Failures throw an Error whose `code` is the errno name (`ENOTSUP`, `EPERM`,
 * …) and whose message names the path.
 */
interface Fsx {
  llistxattr(path: string): string[];
  lgetxattr(path: string, name: string): Buffer | null;
  lsetxattr(path: string, name: string, value: Buffer): void;
  mknod(path: string, mode: number, major: number, minor: number): void;
  openInRoot(root: string, path: string, nofollow: boolean, noSymlinks: boolean, mode: number): number;
  mountOverlay(root: string, target: string, lowers: readonly string[], upper: string | null, work: string | null, options: readonly string[]): void;
  copyFiles(srcDir: string, dstDir: string, names: readonly string[], uid: number, gid: number): Promise<Uint8Array>;
  copyFileData(src: string, dst: string): Promise<void>;
  inspectFiles(dir: string, names: readonly string[], readMax: number, budget: number): Promise<Buffer>;
  unmount(target: string, detach: boolean): Promise<void>;
  syncfs(path: string): Promise<void>;
  newNetNamespace(tap?: string): number;
  sha256New(): Sha256Handle;
  sha256Update(h: Sha256Handle, bytes: Uint8Array): Promise<void>;
  sha256Digest(h: Sha256Handle): Buffer;
}

/** A SHA-256 state in the addon (see {@link ThreadPoolSha256}). */
declare const sha256Handle: unique symbol;
type Sha256Handle = { readonly [sha256Handle]: true };


let loaded: Fsx | undefined;

// Loaded on first use, not at import: modules that merely import this one (and tests that
// never touch xattrs) keep working when the addon hasn't been built yet.
function fsx(): Fsx {
  if (!loaded) {
    const path = packageFile('native/build/Release/fsx.node');
    try {
      loaded = createRequire(import.meta.url)(path) as Fsx;
    } catch (e) {
      throw new Error(`native addon ${path} could not be loaded; build it with "npm run build" (node-gyp rebuild --directory native)`, { cause: e });
    }
  }
  return loaded;
}

/** Names of the extended attributes of `path` (not following a final symlink), in kernel order. */
export function llistxattr(path: string): string[] {
  return fsx().llistxattr(path);
}

/** Raw value of xattr `name` on `path`, or null when it is not set. */
export function lgetxattr(path: string, name: string): Buffer | null {
  return fsx().lgetxattr(path, name);
}

/** Sets xattr `name` on `path` (creating or replacing it) to the raw bytes `value`. */
export function lsetxattr(path: string, name: string, value: Buffer): void {
  fsx().lsetxattr(path, name, value);
}

/**
 * Creates a device node or fifo. `mode` holds the type bits (`fs.constants.S_IFCHR`,
 * `S_IFBLK` or `S_IFIFO`) plus permissions (subject to the umask, as mknod(2)).
 */
export function mknod(path: string, mode: number, major: number, minor: number): void {
  fsx().mknod(path, mode, major, minor);
}


/** How openInRootFd resolves: openat2 where the kernel allows it (`auto`), or forced (tests). */
export type ResolveMode = 'auto' | 'kernel' | 'walk';

/**
 * An O_PATH descriptor (close it with fs.closeSync) for `path` resolved inside the directory
 * `root` as after chroot(root). Use src/oci/in-root.ts, not this. `nofollow` opens a final
 * symlink itself; `noSymlinks` fails with ELOOP at any symlink.
 */
export function openInRootFd(root: string, path: string, nofollow: boolean, noSymlinks: boolean, mode: ResolveMode): number {
  return fsx().openInRoot(root, path, nofollow, noSymlinks, mode === 'auto' ? 0 : mode === 'kernel' ? 1 : 2);
}

/**
 * Mounts overlayfs on `target` with the new mount API, each lower layer given on its own
 * (`lowerdir+`, top first), so an image may have as many layers as overlay stacks (500).
 * `lowers`, `upper` and `work` are relative to `root`; `options` are `key` or `key=value`.
 * Throws with code ENOSYS on kernels without `lowerdir+` (before 6.8); the message carries the
 * kernel's own reason otherwise.
 */
export function mountOverlay(root: string, target: string, lowers: readonly string[], dirs: { upper?: string; work?: string }, options: readonly string[]): void {
  fsx().mountOverlay(root, target, lowers, dirs.upper ?? null, dirs.work ?? null, options);
}

/**
 * umount2(`target`) in the thread pool, never following a final symlink; `detach` unmounts
 * lazily (MNT_DETACH). Rejects with the errno's code (EBUSY, EINVAL when not a mount point, …).
 */
export function unmount(target: string, detach = false): Promise<void> {
  return fsx().unmount(target, detach);
}

/** syncfs(2) of the filesystem holding the directory `path`, in the thread pool. */
export function syncfs(path: string): Promise<void> {
  return fsx().syncfs(path);
}

/**
 * A new network namespace (a down `lo`, and with `tap` a persistent, unattached, down tap device
 * of that name), as a file descriptor of this process that holds it: made by unshare(2) in a
 * short-lived thread of its own, so no thread of this process is left in it. Throws an errno
 * error (EPERM without CAP_SYS_ADMIN over our user namespace, ENOENT without /dev/net/tun).
 */
export function newNetNamespace(tap?: string): number {
  return fsx().newNetNamespace(tap);
}

/**
 * SHA-256 whose updates run in the thread pool (Node's own OpenSSL, through the addon): for
 * large data that the thread pool is reading or writing anyway, so hashing stops taking the
 * main thread. Updates are applied in call order; `digest()` waits for them.
 */
export class ThreadPoolSha256 {
  readonly #h = fsx().sha256New();
  #tail: Promise<void> = Promise.resolve();

  /** Resolves once `bytes` (not to be changed until then) is hashed; rejects if that failed. */
  update(bytes: Uint8Array): Promise<void> {
    const done = this.#tail.then(() => fsx().sha256Update(this.#h, bytes));
    this.#tail = done.catch(() => undefined);
    return done;
  }

  /** The hex digest of everything updated so far (ends the state: no update after it). */
  async digestHex(): Promise<string> {
    await this.#tail;
    return fsx().sha256Digest(this.#h).toString('hex');
  }
}

/** A name {@link copyFiles} copied, or left for the caller's general copy. */
export const COPY_DONE = 0;
export const COPY_DEFER = 1;

/**
 * Copies the regular files `names` (single path components) of directory `srcDir` into
 * directory `dstDir` in one thread-pool job: data (reflink, copy_file_range or sendfile), owner
 * (`uid`/`gid`, or -1 to keep the source's), mode, xattrs but overlay's, atime and mtime.
 * Neither directory may be a symlink, nor is any name followed. Resolves to one status per
 * name: {@link COPY_DONE}, or {@link COPY_DEFER} when the caller must copy it its general way
 * (not a regular file, several links, an existing destination, an owner the user namespace
 * does not map). Rejects on the first other error, naming the path.
 */
export function copyFiles(srcDir: string, dstDir: string, names: readonly string[], owner: { uid: number; gid: number } | undefined): Promise<Uint8Array> {
  return fsx().copyFiles(srcDir, dstDir, names, owner?.uid ?? -1, owner?.gid ?? -1);
}

/**
 * Copies the data of regular file `src` into the new file `dst` (created exclusively, mode 0600,
 * owned by us: the caller sets the rest) in the thread pool, as {@link copyFiles} does: reflink,
 * copy_file_range or sendfile. Neither final component is followed. Unlike fs.copyFile it never
 * truncates: on ext4 that made the close of a big copy wait for its writeback to start.
 */
export function copyFileData(src: string, dst: string): Promise<void> {
  return fsx().copyFileData(src, dst);
}

/** lstat of one name as {@link inspectFiles} reports it; `data` is a view into the batch's buffer. */
export interface Inspected {
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  /** Whole seconds (as a layer tar keeps them). */
  readonly mtime: number;
  readonly nlink: number;
  readonly dev: bigint;
  readonly ino: bigint;
  readonly rdev: bigint;
  /** Whether the entry has any extended attribute (then read them with llistxattr). */
  readonly hasXattrs: boolean;
  /** A symlink's target, or a regular file's content when it was read whole; else undefined. */
  readonly data?: Buffer;
}

const RECORD = 80;

/**
 * lstat, the presence of xattrs, a symlink's target and the content of regular files up to
 * `readMax` bytes (until `budget` bytes in all; later or larger files are left to stream) for
 * each of `names` (single path components) in directory `dir`, in one thread-pool job. Neither
 * `dir` nor a name is followed if it is a symlink; only regular files are opened.
 */
export async function inspectFiles(dir: string, names: readonly string[], readMax: number, budget: number): Promise<Inspected[]> {
  const buf = await fsx().inspectFiles(dir, names, readMax, budget);
  const out: Inspected[] = [];
  for (let i = 0; i < names.length; i++) {
    const r = i * RECORD;
    const flags = buf.readUInt32LE(r + 12);
    const off = Number(buf.readBigUInt64LE(r + 64));
    const len = Number(buf.readBigUInt64LE(r + 72));
    out.push({
      mode: buf.readUInt32LE(r),
      uid: buf.readUInt32LE(r + 4),
      gid: buf.readUInt32LE(r + 8),
      size: Number(buf.readBigUInt64LE(r + 16)),
      mtime: Number(buf.readBigInt64LE(r + 24)),
      nlink: Number(buf.readBigUInt64LE(r + 32)),
      dev: buf.readBigUInt64LE(r + 40),
      ino: buf.readBigUInt64LE(r + 48),
      rdev: buf.readBigUInt64LE(r + 56),
      hasXattrs: (flags & 1) !== 0,
      ...((flags & 2) !== 0 ? { data: buf.subarray(off, off + len) } : {}),
    });
  }
  return out;
}

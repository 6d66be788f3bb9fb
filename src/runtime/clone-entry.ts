import { constants, type BigIntStats } from 'node:fs';
import { chmod, lchown, link, lstat, lutimes, mkdir, readdir, readlink, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { isOverlayXattr } from '../oci/layer/overlay-xattrs.js';
import { copyFileData, lgetxattr, llistxattr, lsetxattr, mknod } from '../oci/native-fs.js';


/**
 * Copies one entry `src` (already lstat'ed as `st`, never followed) to the new path `dst`, with
 * its owner, mode, xattrs and mtime, as overlay's copy-up does. Used by the copy snapshotter
 * (materializing layers, writing an upper) and the chroot runner (bind sources); both act on
 * trees that nothing writes into meanwhile, so `src` is still what `st` describes.
 *
 * - a regular file is reflinked (copyFileData: a clone where the filesystem can, a copy
 *   elsewhere; never a hardlink, which a later write through the tree would turn into a change
 *   of the source);
 * - with `links`, a second path to an inode already copied (nlink > 1) becomes a hardlink to
 *   the first copy, keyed by the source's dev:ino;
 * - a directory is created empty: the caller fills it, then calls `finishDir` (its mtime must
 *   be set after its entries are made).
 * Order matters: chown clears set-id bits and file capabilities, so mode and xattrs follow it.
 */
export async function cloneEntry(src: string, st: BigIntStats, dst: string, links?: Map<string, string>): Promise<void> {
  if (links && !st.isDirectory() && st.nlink > 1n) {
    const key = `${st.dev}:${st.ino}`;
    const first = links.get(key);
    if (first !== undefined) {
      await link(first, dst);
      return;
    }
    links.set(key, dst);
  }
  const mode = Number(st.mode & 0o7777n);
  if (st.isFile()) {
    await copyFileData(src, dst);
  } else if (st.isDirectory()) {
    await mkdir(dst, { mode: 0o700 });
  } else if (st.isSymbolicLink()) {
    await symlink(await readlink(src), dst);
  } else {
    const type = st.isCharacterDevice() ? constants.S_IFCHR : st.isBlockDevice() ? constants.S_IFBLK : st.isFIFO() ? constants.S_IFIFO : constants.S_IFSOCK;
    const { major, minor } = splitRdev(st.rdev);
    mknod(dst, type | 0o600, major, minor);
  }
  await lchown(dst, Number(st.uid), Number(st.gid));
  if (!st.isSymbolicLink()) await chmod(dst, mode);
  copyXattrs(src, dst);
  if (!st.isDirectory()) await setMtime(dst, st);
}

/** Sets a directory's mtime once its entries are in place. */
export async function finishDir(dst: string, st: BigIntStats): Promise<void> {
  await setMtime(dst, st);
}

async function setMtime(dst: string, st: BigIntStats): Promise<void> {
  // Seconds as a double: sub-microsecond digits are lost, which no layer (whole seconds) sees.
  await lutimes(dst, Number(st.atimeNs) / 1e9, Number(st.mtimeNs) / 1e9);
}

function copyXattrs(src: string, dst: string): void {
  for (const name of llistxattr(src)) {
    // Overlay's bookkeeping of a layer dir is never content of a tree.
    if (isOverlayXattr(name)) continue;
    const v = lgetxattr(src, name);
    if (v !== null) lsetxattr(dst, name, v);
  }
}

/** glibc's gnu_dev_major/minor for a 64-bit dev_t. */
function splitRdev(rdev: bigint): { major: number; minor: number } {
  return {
    major: Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn)),
    minor: Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn)),
  };
}

/**
 * Gives the existing directory `dst` the owner, mode and xattrs of `src` (a directory of a
 * higher layer over one of a lower layer); its mtime is set by `finishDir` afterwards.
 * Xattrs only the lower directory had are kept: Node has no removexattr, and overlay upper
 * directories of real builds never drop one.
 */
export async function restampDir(src: string, st: BigIntStats, dst: string): Promise<void> {
  await lchown(dst, Number(st.uid), Number(st.gid));
  await chmod(dst, Number(st.mode & 0o7777n));
  copyXattrs(src, dst);
}

/** Copies the quiet tree `src` (a directory) to the new path `dst` with cloneEntry, hardlinks kept. */
export async function cloneTree(src: string, dst: string, signal?: AbortSignal): Promise<void> {
  const links = new Map<string, string>();
  const visit = async (s: string, d: string): Promise<void> => {
    signal?.throwIfAborted();
    const st = await lstat(s, { bigint: true });
    await cloneEntry(s, st, d, links);
    if (!st.isDirectory()) return;
    for (const name of await readdir(s)) await visit(join(s, name), join(d, name));
    await finishDir(d, st);
  };
  await visit(src, dst);
}

import { lstat, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { BuildError } from '../errors.js';

/** Same limit as Linux path resolution (MAXSYMLINKS is 40) and runc/securejoin (255): ours is the stricter one. */
const MAX_SYMLINKS = 40;

/**
 * Resolves `path` (as seen inside the container) to a host path under `rootfs`, following
 * symlinks the way the kernel would after `chroot(rootfs)`: absolute link targets restart at
 * `rootfs` and `..` never climbs above it. The rootfs is untrusted (it comes from an image), so
 * this is what every host-side read or write into it must go through.
 *
 * Components that do not exist are appended unresolved, so the result may name a path that is
 * still to be created. The final component is resolved too when it is a symlink.
 * Throws `BuildError('COPY_SOURCE_ESCAPES')` on a symlink loop (more than 40 links).
 *
 * Not race-free against a rootfs that changes concurrently (nothing runs in it while we read).
 */
export async function resolveInRootfs(rootfs: string, path: string): Promise<string> {
  // `resolved` is always a clean list of components below rootfs.
  const resolved: string[] = [];
  let pending = splitPath(path);
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === '.' || part === '') continue;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    const host = join(rootfs, ...resolved, part);
    let isLink = false;
    try {
      isLink = (await lstat(host)).isSymbolicLink();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' && (e as NodeJS.ErrnoException).code !== 'ENOTDIR') throw e;
    }
    if (!isLink) {
      resolved.push(part);
      continue;
    }
    if (++links > MAX_SYMLINKS) {
      throw new BuildError('COPY_SOURCE_ESCAPES', `too many levels of symbolic links resolving ${path} in the image`);
    }
    const target = await readlink(host);
    if (target.startsWith('/')) resolved.length = 0;
    pending = [...splitPath(target), ...pending];
  }
  return join(rootfs, ...resolved);
}

function splitPath(p: string): string[] {
  return p.split('/').filter((s) => s !== '');
}

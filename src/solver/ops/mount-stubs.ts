import { lstatSync, readdirSync, rmdirSync, rmSync } from 'node:fs';
import { posix } from 'node:path';
import { lgetxattr } from '../../oci/native-fs.js';
import { atInRoot, containerPathParts } from '../../oci/in-root.js';

/**
 * runc creates a missing mount point (/etc/hosts, /proc, /dev, ...) inside the rootfs, which
 * would otherwise leak into the RUN's layer, and copies its parent dir up into the upperdir.
 * As BuildKit's executor does with its mount stubs, we note what was missing before the run and
 * take it away afterwards, so `RUN true` yields an empty layer.
 *
 * Only container paths are remembered: the RUN may since have replaced any parent with a
 * symlink (to `/`, to a host directory's path), so every removal resolves its path again
 * after the RUN, inside the rootfs as runc resolved the mount target (src/oci/in-root.ts);
 * in the upperdir no symlink is followed at all.
 *
 * The few calls (a handful of lstat, readdir and rmdir per RUN) run on the main thread: as
 * thread-pool round trips awaited one after another they were ~2 ms before and after every RUN.
 */
export interface MountStubs {
  /** Removes created mount points (and created parents, when empty) from the merged rootfs. */
  removeCreated(): Promise<void>;
  /** After unmount: drops parents that were only copied up into `upper` and are otherwise unchanged. */
  pruneCopyUps(upper: string, opaqueXattr: string): Promise<void>;
}

interface Parent {
  readonly path: string;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
}

/** lstat of `path` inside `root` (its parent resolved there, itself not followed); undefined when absent. */
function lstatIn(root: string, path: string, symlinks: 'chroot' | 'none') {
  return atInRoot(root, path, (host) => lstatSync(host, { throwIfNoEntry: false }), { symlinks }).catch(() => undefined);
}

export async function recordMountStubs(rootfs: string, destinations: readonly string[]): Promise<MountStubs> {
  const created: { path: string; createdParents: string[] }[] = [];
  const parents: Parent[] = [];
  for (const dest of destinations) {
    const parts = containerPathParts(dest);
    let firstMissing = -1;
    for (let i = 0; i < parts.length; i++) {
      if (!(await lstatIn(rootfs, parts.slice(0, i + 1).join('/'), 'chroot'))) {
        firstMissing = i;
        break;
      }
    }
    if (firstMissing < 0) continue;
    const parentRel = parts.slice(0, firstMissing).join('/');
    const pst = await lstatIn(rootfs, parentRel, 'chroot');
    if (parentRel && pst) parents.push({ path: parentRel, mode: pst.mode, uid: pst.uid, gid: pst.gid });
    const createdParents: string[] = [];
    for (let i = parts.length - 1; i > firstMissing; i--) createdParents.push(parts.slice(0, i).join('/'));
    created.push({ path: parts.join('/'), createdParents });
  }
  return {
    async removeCreated() {
      for (const c of created) {
        await atInRoot(
          rootfs,
          c.path,
          (host) => {
            const st = lstatSync(host, { throwIfNoEntry: false });
            // Only what runc made: an empty file or an empty directory.
            if (st && ((st.isFile() && st.size === 0) || (st.isDirectory() && readdirSync(host).length === 0))) rmSync(host, { recursive: true });
          },
        ).catch(() => undefined);
        for (const p of c.createdParents) await atInRoot(rootfs, p, (host) => rmdirSync(host)).catch(() => undefined);
      }
    },
    async pruneCopyUps(upper: string, opaqueXattr: string) {
      // An upperdir holds directories for copied-up parents; a symlink among them was put
      // there by the RUN and is never followed.
      const opts = { symlinks: 'none' } as const;
      for (const p of parents) {
        const removed = await atInRoot(
          upper,
          p.path,
          (dir) => {
            const st = lstatSync(dir, { throwIfNoEntry: false });
            if (!st?.isDirectory() || st.mode !== p.mode || st.uid !== p.uid || st.gid !== p.gid) return false;
            if (readdirSync(dir).length > 0 || lgetxattr(dir, opaqueXattr) !== null) return false;
            rmdirSync(dir);
            return true;
          },
          opts,
        ).catch(() => false);
        if (!removed) continue;
        // Its own parents may have been copied up only to hold it.
        for (let d = posix.dirname(p.path); d !== '.' && d !== '/'; d = posix.dirname(d)) {
          const empty = await atInRoot(upper, d, (full) => readdirSync(full).length === 0, opts).catch(() => false);
          if (!empty) break;
          await atInRoot(upper, d, (full) => rmdirSync(full), opts).catch(() => undefined);
        }
      }
    },
  };
}

import { lstat, readdir, rm, rmdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { lgetxattr } from '../../oci/native-fs.js';

/**
 * runc creates a missing mount point (/etc/hosts, /proc, /dev, ...) inside the rootfs, which
 * would otherwise leak into the RUN's layer, and copies its parent dir up into the upperdir.
 * As BuildKit's executor does with its mount stubs, we note what was missing before the run and
 * take it away afterwards, so `RUN true` yields an empty layer.
 */
export interface MountStubs {
  /** Removes created mount points (and created parents, when empty) from the merged rootfs. */
  removeCreated(): Promise<void>;
  /** After unmount: drops parents that were only copied up into `upper` and are otherwise unchanged. */
  pruneCopyUps(upper: string): Promise<void>;
}

interface Parent {
  readonly path: string;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
}

export async function recordMountStubs(rootfs: string, destinations: readonly string[]): Promise<MountStubs> {
  const created: { path: string; createdParents: string[] }[] = [];
  const parents: Parent[] = [];
  for (const dest of destinations) {
    const parts = dest.split('/').filter(Boolean);
    let firstMissing = -1;
    for (let i = 0; i < parts.length; i++) {
      const st = await lstat(join(rootfs, ...parts.slice(0, i + 1))).catch(() => undefined);
      if (!st) {
        firstMissing = i;
        break;
      }
    }
    if (firstMissing < 0) continue;
    const parentRel = parts.slice(0, firstMissing).join('/');
    const pst = await lstat(join(rootfs, parentRel));
    if (parentRel) parents.push({ path: parentRel, mode: pst.mode, uid: pst.uid, gid: pst.gid });
    const createdParents: string[] = [];
    for (let i = parts.length - 1; i > firstMissing; i--) createdParents.push(join(rootfs, ...parts.slice(0, i)));
    created.push({ path: join(rootfs, ...parts), createdParents });
  }
  return {
    async removeCreated() {
      for (const c of created) {
        const st = await lstat(c.path).catch(() => undefined);
        // Only what runc made: an empty file or an empty directory.
        if (st && ((st.isFile() && st.size === 0) || (st.isDirectory() && (await readdir(c.path)).length === 0))) await rm(c.path, { recursive: true });
        for (const p of c.createdParents) await rmdir(p).catch(() => undefined);
      }
    },
    async pruneCopyUps(upper: string) {
      for (const p of parents) {
        const dir = join(upper, p.path);
        const st = await lstat(dir).catch(() => undefined);
        if (!st?.isDirectory() || st.mode !== p.mode || st.uid !== p.uid || st.gid !== p.gid) continue;
        if ((await readdir(dir)).length > 0 || lgetxattr(dir, 'trusted.overlay.opaque') !== null) continue;
        await rmdir(dir);
        // Its own parents may have been copied up only to hold it.
        for (let d = dirname(p.path); d !== '.' && d !== '/'; d = dirname(d)) {
          const full = join(upper, d);
          if ((await readdir(full).catch(() => ['x'])).length > 0) break;
          await rmdir(full).catch(() => undefined);
        }
      }
    },
  };
}

import type { BigIntStats } from 'node:fs';
import { lstat, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { lgetxattr } from '../oci/native-fs.js';
import { cloneEntry, finishDir, restampDir } from './clone-entry.js';

/** Copies in flight per directory. */
const COPY_CONCURRENCY = 8;

/** Both spellings of overlay's opaque marker: stores made with `userxattr` and legacy ones. */
const OPAQUE_XATTRS = ['user.overlay.opaque', 'trusted.overlay.opaque'];

/**
 * Applies the committed overlay-format layer directory `layer` onto the directory `work`, as
 * overlayfs would show it stacked on what `work` holds: a whiteout (char device 0:0) deletes
 * the path, an opaque directory replaces the directory below instead of merging with it, and
 * every other entry replaces what was at its path (copied with cloneEntry: reflinked, owner,
 * mode, xattrs, mtime; hardlinks within the layer kept).
 *
 * Both trees are tsbuild's own and quiet (a committed layer, a working dir no process runs in):
 * they are walked with lstat and readdir and nothing is followed.
 */
export async function applyLayerDir(layer: string, work: string, signal?: AbortSignal): Promise<void> {
  const links = new Map<string, string>();
  const visit = async (rel: string): Promise<void> => {
    // Plain files of one directory are copied a few at a time: each copy is a handful of
    // thread-pool round trips, and one after another they leave the disk idle.
    const pending = new Set<Promise<void>>();
    const failed: unknown[] = [];
    const settle = async (max: number) => {
      while (pending.size > max) await Promise.race(pending);
      if (failed.length > 0) throw failed[0];
    };
    try {
      for (const name of await readdir(join(layer, rel))) {
        signal?.throwIfAborted();
        const c = rel ? `${rel}/${name}` : name;
        const s = join(layer, c);
        const d = join(work, c);
        const st = await lstat(s, { bigint: true });
        let existing: BigIntStats | undefined = await lstat(d, { bigint: true }).catch(() => undefined);
        if (st.isCharacterDevice() && st.rdev === 0n) {
          if (existing) await rm(d, { recursive: true, force: true });
          continue;
        }
        if (existing && (!st.isDirectory() || !existing.isDirectory() || isOpaque(s))) {
          await rm(d, { recursive: true, force: true });
          existing = undefined;
        }
        if (!st.isDirectory()) {
          // Hardlinked files go one by one: the second name links to the first copy, which must exist.
          const p = cloneEntry(s, st, d, links);
          if (st.nlink > 1n) {
            await p;
            continue;
          }
          // Caught at once (a rejection nobody awaits yet would end the process), rethrown by settle.
          const tracked: Promise<void> = p.catch((e: unknown) => void failed.push(e)).finally(() => pending.delete(tracked));
          pending.add(tracked);
          await settle(COPY_CONCURRENCY);
          continue;
        }
        if (existing) await restampDir(s, st, d);
        else await cloneEntry(s, st, d);
        await visit(c);
        await finishDir(d, st);
      }
    } finally {
      await Promise.allSettled(pending);
    }
    await settle(0);
  };
  await visit('');
}

function isOpaque(dir: string): boolean {
  return OPAQUE_XATTRS.some((x) => lgetxattr(dir, x)?.toString() === 'y');
}

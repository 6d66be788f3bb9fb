import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Digest } from '../oci/digest.js';

/**
 * Prune's sweep of a memo directory (`<name>.json` entries written by rename): removes the
 * entries whose layers `present` no longer has, those `layersOf` can't read (undefined), and
 * temp files a crashed writer left. Only while no build runs (prune's lock guarantees that).
 * @returns how many entries went.
 */
export async function sweepMemoDir(dir: string, layersOf: (path: string) => Promise<readonly Digest[] | undefined>, present: (diffId: Digest) => boolean): Promise<number> {
  let removed = 0;
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const path = join(dir, name);
    if (name.endsWith('.tmp')) {
      await rm(path, { force: true });
      continue;
    }
    if (!name.endsWith('.json')) continue;
    const layers = await layersOf(path);
    if (layers && layers.every(present)) continue;
    await rm(path, { force: true });
    removed++;
  }
  return removed;
}

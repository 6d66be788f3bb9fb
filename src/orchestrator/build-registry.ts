import { mkdirSync, writeFileSync } from 'node:fs';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { withFileLock } from '../oci/index-lock.js';
import type { RootDirs } from '../root-dirs.js';
import { currentOwner, isOwnerAlive } from '../runtime/owner.js';

/**
 * Which processes are building on a root right now: `cache/active/<pid>` holds the owner token
 * (pid + start time, see runtime/owner.ts). Registration and garbage collection both take
 * `cache/gc.lock`, so a prune never deletes layers under a running build: it only runs when no
 * live build is registered, and a build can't register while a prune runs.
 */
export interface BuildRegistration {
  release(): Promise<void>;
}

export function gcLockPath(dirs: RootDirs): string {
  return join(dirs.cache, 'gc.lock');
}

export async function registerBuild(dirs: RootDirs, signal?: AbortSignal): Promise<BuildRegistration> {
  const dir = join(dirs.cache, 'active');
  // On this thread, as the lock: every build registers before its first step.
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${process.pid}-${Date.now()}`);
  const owner = await currentOwner();
  await withFileLock(gcLockPath(dirs), async () => writeFileSync(file, owner), { signal });
  return { release: () => rm(file, { force: true }) };
}

/** Owner tokens of the live registered builds other than this process; entries of dead ones are removed. */
export async function otherLiveBuilds(dirs: RootDirs): Promise<string[]> {
  const dir = join(dirs.cache, 'active');
  const live: string[] = [];
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const owner = await readFile(join(dir, name), 'utf8').catch(() => '');
    if (await isOwnerAlive(owner)) {
      if (!owner.startsWith(`${process.pid} `)) live.push(owner);
    } else await rm(join(dir, name), { force: true });
  }
  return live;
}

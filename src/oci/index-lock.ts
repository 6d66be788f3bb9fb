import { closeSync, constants as fsConstants, linkSync, openSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { readFile, stat, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { BuildError } from '../errors.js';

/** How long a lock-breaker file may live before another process treats it as abandoned. */
const BREAKER_STALE_MS = 10_000;

/**
 * Runs `fn` while holding an exclusive lock file at `lockPath` (created with O_EXCL, holding
 * the owner's pid), shared between processes. A lock whose pid is no longer alive is stale and
 * is broken; otherwise we wait with capped exponential backoff until `timeoutMs`.
 */
export async function withFileLock<T>(lockPath: string, fn: () => Promise<T>, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<T> {
  const release = await acquireFileLock(lockPath, opts);
  try {
    return await fn();
  } finally {
    await release();
  }
}

/**
 * The same lock for holders whose critical section is not one function call (a cache mount held
 * for a whole RUN): resolves once held, with the function that releases it. `timeoutMs` may be
 * Infinity, then only `signal` ends the wait.
 */
export async function acquireFileLock(lockPath: string, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<() => Promise<void>> {
  await acquire(lockPath, opts.timeoutMs ?? 120_000, opts.signal);
  return async () => {
    try {
      unlinkSync(lockPath);
    } catch {
      // Gone already (broken as stale by another process), or not ours to remove.
    }
  };
}

async function acquire(lockPath: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let delay = 2;
  for (;;) {
    signal?.throwIfAborted();
    if (await tryCreate(lockPath)) return;
    const owner = await readOwner(lockPath);
    if (owner !== undefined && !isAlive(owner)) {
      await breakStale(lockPath, owner);
      continue;
    }
    if (Date.now() > deadline) {
      throw new BuildError('INTERNAL', `timed out waiting for lock ${lockPath} (held by pid ${owner ?? 'unknown'})`, {
        hint: 'another tsbuild process is using this root; if none is running, remove the lock file',
      });
    }
    await sleep(delay + Math.random() * delay, undefined, { signal });
    delay = Math.min(delay * 2, 100);
  }
}

/**
 * Creates `lockPath` holding our pid, atomically: the pid is written to a private file first and
 * then hard-linked into place (link fails with EEXIST like O_EXCL), so the lock file is never
 * seen empty and a crash can't leave an ownerless lock.
 */
async function tryCreate(lockPath: string): Promise<boolean> {
  // On this thread: five metadata calls, which as thread-pool round trips one after another cost
  // each tag update and each build's registration about a millisecond.
  const mine = `${lockPath}.${process.pid}.${randomBytes(4).toString('hex')}`;
  const fd = openSync(mine, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o644);
  try {
    writeSync(fd, String(process.pid));
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(mine, lockPath);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  } finally {
    rmSync(mine, { force: true });
  }
}

/** The pid in the lock file; undefined when it vanished. */
async function readOwner(lockPath: string): Promise<number | undefined> {
  try {
    const s = (await readFile(lockPath, 'utf8')).trim();
    const pid = Number(s);
    return s !== '' && Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: the process exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes a stale lock. Two waiters may both see the same dead pid; a second O_EXCL file
 * serializes the breakers, and the owner is re-read under it so that a fresh lock taken
 * meanwhile by a live process is never removed.
 */
async function breakStale(lockPath: string, deadPid: number): Promise<void> {
  const breaker = `${lockPath}.break`;
  if (!(await tryCreate(breaker))) {
    try {
      const st = await stat(breaker);
      if (Date.now() - st.mtimeMs > BREAKER_STALE_MS) await unlink(breaker).catch(() => undefined);
    } catch {
      // gone already
    }
    await sleep(5);
    return;
  }
  try {
    if ((await readOwner(lockPath)) === deadPid) await unlink(lockPath).catch(() => undefined);
  } finally {
    await unlink(breaker).catch(() => undefined);
  }
}

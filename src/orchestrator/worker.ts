import { mkdirSync, readdirSync } from 'node:fs';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { cleanupTemp } from '../oci/content-store.js';
import { ImageLayout } from '../oci/image-layout.js';
import type { ExpansionLimits } from '../oci/layer/expansion-guard.js';
import { rootDirs, type RootDirs } from '../root-dirs.js';
import { LayerStore } from '../runtime/layer-store.js';
import { BuildError } from '../errors.js';
import { chooseIsolation, createRuntime, type Isolation, type IsolationChoice, type Runtime } from '../runtime/isolation.js';
import { probeIsolation } from '../runtime/isolation-probe.js';
import { assertWhiteoutsPossible } from '../runtime/whiteout-check.js';
import { cleanupStaleCopies, copiesDir } from '../runtime/copy-snapshotter.js';
import { cleanupStaleMounts } from '../runtime/overlay.js';
import { currentOwner, isOwnerAlive } from '../runtime/owner.js';
import { cleanupStaleContainers } from '../runtime/runc.js';
import type { Worker } from '../solver/worker.js';

/** A worker that owns resources until closed. */
export interface OwnedWorker extends Worker {
  /** The isolation mode its snapshots and RUN steps use, and why it was chosen. */
  readonly isolation: IsolationChoice;
  /** Removes the worker's private temp dir (a build's scratch space) and what its snapshotter keeps. */
  close(): Promise<void>;
}

const PRIVATE_TMP_PREFIX = 'p-';

/**
 * Opens (creating when missing) the state under `root` and wires the real runtime into a Worker.
 * With `privateTmp`, temp files (blob writes, unpacking, runc bundles) go to a directory of this
 * process's own under `tmp/`, tagged with its owner, so whatever a killed build leaves there can
 * later be told apart from a live build's files and removed whole (see `cleanupAfterCrashes`).
 */
export async function openWorker(root: string, opts: { privateTmp?: boolean; expansionLimits?: ExpansionLimits; isolation?: Isolation | 'auto' } = {}): Promise<OwnedWorker> {
  const shared = rootDirs(root);
  // On this thread: seven thread-pool round trips one after another were ~2 ms of every build's start.
  for (const d of [shared.root, shared.layers, shared.links, shared.mounts, shared.runc, shared.tmp, shared.cache]) mkdirSync(d, { recursive: true });
  const isolation = chooseIsolation(await probeIsolation(shared.root, shared.tmp), opts.isolation ?? 'auto');
  if (isolation.needsUserNamespace) {
    // main.ts enters the namespace before anything else runs; getting here means it could not.
    throw new BuildError('RUNTIME', `isolation ${isolation.mode} needs tsbuild to run in a user namespace of its own, and it does not`, {
      hint: 'start tsbuild through its CLI (which enters the namespace), or pass --isolation chroot',
    });
  }
  let dirs: RootDirs = shared;
  if (opts.privateTmp) {
    // The owner is in the name, so the directory is never seen without one.
    const tmp = await mkdtemp(join(shared.tmp, `${PRIVATE_TMP_PREFIX}${(await currentOwner()).replace(' ', '-')}-`));
    dirs = { ...shared, tmp };
  }
  let opened: { images: ImageLayout; layers: LayerStore; runtime: Runtime };
  try {
    await assertWhiteoutsPossible(dirs.tmp, shared.root);
    const layers = await LayerStore.open(dirs);
    opened = { images: await ImageLayout.open(dirs.store, { create: true, tmpDir: dirs.tmp }), layers, runtime: createRuntime(isolation.mode, dirs, layers) };
  } catch (e) {
    if (dirs.tmp !== shared.tmp) await rm(dirs.tmp, { recursive: true, force: true });
    throw e;
  }
  const { images, layers } = opened;
  const { snapshotter, runner } = opened.runtime;
  return {
    dirs,
    images,
    blobs: images.blobs,
    layers,
    sandbox: runner,
    isolation,
    ...(opts.expansionLimits ? { expansionLimits: opts.expansionLimits } : {}),
    mount: (lower, o, ctx) => snapshotter.prepare(lower, o, ctx),
    networksNeeded: (n) => runner.keepFor?.(n),
    stepsDone: () => {
      // close() below waits for it, and reports its failure (it may be asked again).
      void runner.close?.().catch(() => undefined);
    },
    close: async () => {
      await runner.close?.();
      await snapshotter.close();
      if (dirs.tmp !== shared.tmp) await rm(dirs.tmp, { recursive: true, force: true });
    },
  };
}

/** How long an unowned temp entry may sit before it counts as abandoned (a writer publishes within seconds). */
const ABANDONED_MS = 10 * 60_000;

/**
 * Removes what killed tsbuild processes left under `root`: overlay mounts and runc containers
 * of dead owners, private temp dirs of dead owners, half-written layer staging dirs, and old
 * stray temp files. Never touches what a live process owns. Returns what was removed.
 */
export async function cleanupAfterCrashes(root: string): Promise<string[]> {
  const dirs = rootDirs(root);
  if (nothingLeftBehind(dirs)) return [];
  const removed: string[] = [];
  removed.push(...(await cleanupStaleContainers(dirs.runc).catch(() => [] as string[])).map((c) => `container ${c}`));
  removed.push(...(await cleanupStaleMounts(dirs)).map((m) => `mount ${m}`));
  removed.push(...(await cleanupStaleCopies(dirs)).map((m) => `copy ${m}`));
  for (const name of await readdir(dirs.tmp).catch(() => [] as string[])) {
    const p = join(dirs.tmp, name);
    const owner = /^p-(\d+)-(\d+)-/.exec(name);
    if (owner) {
      if (await isOwnerAlive(`${owner[1]} ${owner[2]}`)) continue;
    } else if (!(await olderThan(p, ABANDONED_MS))) continue;
    await rm(p, { recursive: true, force: true });
    removed.push(`tmp/${name}`);
  }
  for (const name of await readdir(dirs.layers).catch(() => [] as string[])) {
    const p = join(dirs.layers, name);
    if (!name.startsWith('.tmp-') || !(await olderThan(p, ABANDONED_MS))) continue;
    await rm(p, { recursive: true, force: true });
    removed.push(`layers/${name}`);
  }
  await cleanupTemp(dirs.tmp, ABANDONED_MS);
  return removed;
}

/**
 * The usual case, which every build's start pays for: no container, mount, copy or temp entry
 * at all, and no layer staging dir. Five listings on this thread tell, where the walk below
 * takes a dozen thread-pool round trips one after another. A listing that fails otherwise than
 * with ENOENT leaves the answer to the walk.
 */
function nothingLeftBehind(dirs: RootDirs): boolean {
  const list = (d: string): string[] | undefined => {
    try {
      return readdirSync(d);
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === 'ENOENT' ? [] : undefined;
    }
  };
  return [dirs.runc, dirs.mounts, copiesDir(dirs), dirs.tmp].every((d) => list(d)?.length === 0) && list(dirs.layers)?.some((n) => n.startsWith('.tmp-')) === false;
}

async function olderThan(p: string, ms: number): Promise<boolean> {
  const st = await stat(p).catch(() => undefined);
  return !!st && Date.now() - st.mtimeMs > ms;
}

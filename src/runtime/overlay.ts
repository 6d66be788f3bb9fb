import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BuildError } from '../errors.js';
import type { Ctx } from '../ctx.js';
import type { Digest } from '../oci/digest.js';
import type { RootDirs } from '../root-dirs.js';
import type { LayerStore } from './layer-store.js';
import type { OverlayXattrPrefix } from '../oci/layer/overlay-xattrs.js';
import type { Snapshot, Snapshotter } from './snapshotter.js';
import { currentOwner, isStaleOwnedDir } from './owner.js';
import { mountOverlay, unmount as nativeUnmount } from '../oci/native-fs.js';

/**
 * Pinned so that an upperdir's format (and so a layer diff) never depends on module defaults:
 * with redirect_dir or metacopy on, renames and chmods would leave overlay-private xattrs
 * instead of plain copies and whiteouts. With `userxattr` the kernel insists on
 * `redirect_dir=nofollow` (it refuses `off` as conflicting), which also creates no redirects.
 */
const OVERLAY_FIXED_OPTIONS: Record<OverlayXattrPrefix, string> = {
  'trusted.overlay.': 'redirect_dir=off,metacopy=off,index=off',
  'user.overlay.': 'userxattr,redirect_dir=nofollow,metacopy=off,index=off',
};

/**
 * Read-write mounts skip overlay's syncs of the upper filesystem: the one at unmount flushed the
 * whole filesystem on every RUN step's path. An upperdir kept as a layer is not synced at all
 * (unsynced-layers.ts says why that is safe). An fsync inside the RUN is a no-op too. The kernel
 * refuses to mount a volatile upperdir again after a crash: tsbuild mounts each upperdir once only.
 */
const VOLATILE = 'volatile';

/** Snapshots as overlayfs mounts under `dirs.mounts/<id>/` (real root, or root of tsbuild's user namespace). */
export class OverlaySnapshotter implements Snapshotter {
  readonly kind = 'overlay';
  readonly #store: LayerStore;
  readonly #dirs: RootDirs;

  constructor(store: LayerStore, dirs: RootDirs) {
    this.#store = store;
    this.#dirs = dirs;
  }

  prepare(lower: readonly Digest[], opts: { readonly?: boolean }, ctx: Ctx): Promise<Snapshot> {
    return mountRootfs(this.#store, this.#dirs, lower, opts, ctx);
  }

  cleanupStale(): Promise<string[]> {
    return cleanupStaleMounts(this.#dirs);
  }

  async close(): Promise<void> {}
}

/**
 * Mounts the committed layers `lower` (bottom → top) as an overlay rootfs. `release()`
 * unmounts (retrying on EBUSY, lazily as a last resort) and removes the mount's directories.
 *
 * Lower dirs are given by their short links relative to the root (see mountOverlayAt for how
 * many fit). Zero layers (scratch)
 * mount an empty lower dir. `readonly` mounts have no upperdir: overlay then needs at least
 * two lowers, so empty dirs pad the list. Read-write mounts are `volatile`, and a kept upperdir
 * is not synced (see VOLATILE).
 */
export async function mountRootfs(
  store: LayerStore,
  dirs: RootDirs,
  lower: readonly Digest[],
  opts: { readonly?: boolean },
  ctx: Ctx,
): Promise<Snapshot> {
  ctx.signal.throwIfAborted();
  const links: string[] = [];
  for (const d of lower) links.push(await store.shortLink(d));
  const id = randomBytes(12).toString('hex');
  const base = join(dirs.mounts, id);
  const rel = (p: string) => relative(dirs.root, p);
  const merged = join(base, 'merged');
  const upper = opts.readonly ? undefined : join(base, 'upper');
  const work = join(base, 'work');

  // Create the dir under a hidden name and publish it with its owner file, so cleanup never
  // sees an ownerless dir of a live process. The hidden name carries the owner too: a kill
  // before the owner file is written must not leave a dir that nobody can judge.
  // These few metadata calls on tsbuild's own dirs run on this thread: as thread-pool round
  // trips one after the other they were ~1 ms of every RUN step.
  const owner = await currentOwner();
  const staging = join(dirs.mounts, `.new-${owner.replace(' ', '-')}-${id}`);
  mkdirSync(join(staging, 'merged'), { recursive: true });
  writeFileSync(join(staging, 'owner'), owner);
  if (upper) {
    mkdirSync(join(staging, 'upper'));
    mkdirSync(join(staging, 'work'));
  }
  renameSync(staging, base);

  // Overlay wants the top layer first, and refuses (ELOOP) a directory listed twice, which happens
  // when two steps produce the same diff (`COPY a a` twice). Only the topmost copy is kept: a
  // layer applied again on top redoes everything its lower copy did, so the result is the same.
  const lowers = [...new Set([...links].reverse())];
  const minLowers = opts.readonly ? 2 : 1;
  for (let i = 0; lowers.length < minLowers; i++) {
    const empty = join(base, `empty${i}`);
    await mkdir(empty);
    lowers.push(rel(empty));
  }
  try {
    const fixed = OVERLAY_FIXED_OPTIONS[store.overlayXattrPrefix] + (upper ? `,${VOLATILE}` : '');
    await mountOverlayAt(dirs.root, merged, lowers, upper ? { upper: rel(upper), work: rel(work) } : undefined, fixed, lower.length);
  } catch (e) {
    await removeMountDir(dirs, base, owner, id);
    throw e;
  }

  let keep = false;
  let released: Promise<void> | undefined;
  const kept = join(dirs.tmp, `upper-${id}`);
  return {
    id,
    merged,
    upper,
    keepUpper() {
      if (!upper) throw new BuildError('INTERNAL', 'keepUpper() on a read-only mount');
      keep = true;
      return kept;
    },
    release() {
      released ??= (async () => {
        await unmount(merged);
        const movedUpper = keep && upper !== undefined;
        if (movedUpper && upper) {
          mkdirSync(dirs.tmp, { recursive: true });
          renameSync(upper, kept);
        }
        // With the upperdir gone, what is left is a handful of empty dirs and the owner file.
        await removeMountDir(dirs, base, owner, id, { small: !upper || movedUpper });
      })();
      return released;
    },
  };
}

/**
 * Overlay stacks up to 500 layers; the new mount API passes them one by one (`lowerdir+`,
 * Linux 6.8). Older kernels get mount(8), whose single option page (4096 bytes, paths relative
 * to `root` as mount's cwd) holds about 137 short links.
 */
async function mountOverlayAt(root: string, target: string, lowers: readonly string[], rw: { upper: string; work: string } | undefined, fixed: string, layerCount: number): Promise<void> {
  if (lowers.length > OVERLAY_MAX_STACK) {
    throw new BuildError('RUNTIME', `too many layers (${layerCount}): overlayfs stacks at most ${OVERLAY_MAX_STACK}`, { hint: 'squash some steps (fewer RUN/COPY instructions) or build FROM a flattened base' });
  }
  try {
    mountOverlay(root, target, lowers, rw ?? {}, fixed.split(','));
    return;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSYS') throw new BuildError('RUNTIME', `overlay mount failed: ${errText(e)}`, { cause: e });
  }
  const options = [`lowerdir=${lowers.join(':')}`, ...(rw ? [`upperdir=${rw.upper}`, `workdir=${rw.work}`] : []), fixed].join(',');
  if (options.length >= 4096) {
    throw new BuildError('RUNTIME', `too many layers (${layerCount}) for one overlay mount on this kernel: options are ${options.length} bytes`, { hint: 'Linux 6.8 or later mounts up to 500 layers' });
  }
  await run('mount', ['-t', 'overlay', 'overlay', '-o', options, relative(root, target)], root).catch((e: unknown) => {
    throw new BuildError('RUNTIME', `overlay mount failed: ${errText(e)}`, { cause: e });
  });
}

/** The kernel's OVL_MAX_STACK. */
const OVERLAY_MAX_STACK = 500;

/**
 * Unmounts and removes what crashed tsbuild processes left under `dirs.mounts`: entries whose
 * owner process is gone (see owner.ts), never those of live processes sharing the root.
 * Only mount points under `dirs.mounts` (from /proc/self/mounts) are touched.
 * Returns the ids of the entries removed.
 */
export async function cleanupStaleMounts(dirs: RootDirs): Promise<string[]> {
  let entries: string[];
  try {
    entries = await readdir(dirs.mounts);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const mountPoints = await mountPointsUnder(dirs.mounts);
  const removed: string[] = [];
  const owner = await currentOwner();
  for (const name of entries) {
    const base = join(dirs.mounts, name);
    if (!(await isStaleOwnedDir(base))) continue;
    // Deepest first, in case anything got mounted inside the merged dir.
    const inside = mountPoints.filter((m) => m.startsWith(base + '/')).sort((a, b) => b.length - a.length);
    for (const m of inside) await unmount(m);
    // Renamed first for the same reason as in release(): this cleanup may be killed too.
    await removeMountDir(dirs, base, owner, randomBytes(12).toString('hex'));
    removed.push(name);
  }
  return removed;
}

/**
 * Deletes a mount dir (unmounted) by first renaming it to `.del-<owner>-<id>`: a kill in the
 * middle of the recursive delete may take the owner file and leave the rest, and the hidden
 * name still says whose it was, so the next cleanup removes it at once.
 */
async function removeMountDir(dirs: RootDirs, base: string, owner: string, id: string, how: { small?: boolean } = {}): Promise<void> {
  const doomed = join(dirs.mounts, `.del-${owner.replace(' ', '-')}-${id}`);
  renameSync(base, doomed);
  // A few empty dirs are gone faster on this thread than through rm's thread-pool round trips;
  // an upperdir a failed RUN left may be large, and is removed off it.
  if (how.small) rmSync(doomed, { recursive: true, force: true });
  else await rm(doomed, { recursive: true, force: true });
}


/** Mount points at or below `prefix`, decoded from /proc/self/mounts (octal escapes like \040). */
export async function mountPointsUnder(prefix: string): Promise<string[]> {
  const text = await readFile('/proc/self/mounts', 'utf8');
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const field = line.split(' ')[1];
    if (!field) continue;
    const p = field.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (p === prefix || p.startsWith(prefix + '/')) out.push(p);
  }
  return out;
}

/**
 * umount, retrying while busy (a dying process may still hold it), then lazily. The syscall
 * itself (native-fs), not umount(8): a process per RUN step cost ~5 ms on its path.
 */
async function unmount(target: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await nativeUnmount(target);
      return;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // Not (or no longer) a mount point, or gone: nothing is mounted there.
      if (code === 'EINVAL' || code === 'ENOENT') return;
      if (code !== 'EBUSY') throw new BuildError('RUNTIME', `unmounting ${target} failed: ${errText(e)}`, { cause: e });
      if (attempt >= 8) break;
      await sleep(Math.min(25 * 2 ** attempt, 500));
    }
  }
  await nativeUnmount(target, true).catch((e: unknown) => {
    throw new BuildError('RUNTIME', `lazy unmount of ${target} failed: ${errText(e)}`, { cause: e });
  });
}

function run(cmd: string, args: string[], cwd?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd }, (err, _stdout, stderr) => {
      if (err) reject(Object.assign(err, { stderr: String(stderr) }));
      else resolve();
    });
  });
}

function errText(e: unknown): string {
  const stderr = (e as { stderr?: string }).stderr?.trim();
  return stderr || (e instanceof Error ? e.message : String(e));
}

import { randomBytes } from 'node:crypto';
import type { BigIntStats } from 'node:fs';
import { chmod, lstat, mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { BuildError } from '../errors.js';
import type { Ctx } from '../ctx.js';
import type { Digest } from '../oci/digest.js';
import type { RootDirs } from '../root-dirs.js';
import type { LayerStore } from './layer-store.js';
import { atInRoot } from '../oci/in-root.js';
import { applyLayerDir } from './materialize-layers.js';
import { currentOwner, isStaleOwnedDir } from './owner.js';
import type { Snapshot, Snapshotter } from './snapshotter.js';
import { StatManifest } from './stat-manifest.js';


/** A released working dir kept for the step that builds on the layer it just produced. */
interface PoolEntry {
  readonly base: string;
  readonly manifest: StatManifest;
  /** The lower chain the dir held before its own layer. */
  readonly chain: readonly Digest[];
}

/** A materialized tree shared by read-only snapshots of one lower chain. */
interface SharedEntry {
  readonly base: Promise<string>;
  refs: number;
}

/** Working dirs kept for reuse at most: each is a whole root filesystem on disk. */
const DEFAULT_POOL_SIZE = 3;
/** Unused read-only trees kept at most (COPY --from the same stage again, an export after the build). */
const SHARED_KEPT = 2;

/** Where working dirs live, beside `mounts/` on the store's filesystem. */
export function copiesDir(dirs: RootDirs): string {
  return join(dirs.root, 'copies');
}

/**
 * Snapshots without mounts, for where neither mount(2) nor user namespaces are allowed
 * (isolation chroot): a working root filesystem is a plain directory under `<root>/copies/<id>/`
 * materialized from the committed layer dirs (bottom → top, reflinked where the filesystem can),
 * and its changes are found by comparing it with a stat manifest taken right after
 * materializing (src/runtime/stat-manifest.ts), then written as an overlay-format upper so that
 * the rest of tsbuild (layer diff, commit) cannot tell it from an overlay upperdir.
 *
 * Stage reuse: materializing costs a copy of the whole tree, so a stage keeps one working dir
 * that its steps mutate in turn. After a snapshot's upper was kept and released, the dir waits
 * in a small pool (per snapshotter, so per process) keyed by the upper dir's identity
 * (dev:ino:birth time). `LayerStore.commit` renames that upper to `layers/<diffid>/diff`, so a
 * later `prepare(lower + [d])` whose `layers.dir(d)` is that very inode adopts the dir and its
 * manifest instead of materializing again.
 *
 * Directories are published like overlay.ts's mount dirs: made under `.new-<owner>-<id>`, an
 * owner file written, renamed into place; deleted by first renaming to `.del-<owner>-<id>`; so
 * `cleanupStale` can always tell a dead process's leftovers from a live one's.
 */
export class CopySnapshotter implements Snapshotter {
  readonly kind = 'copy' as const;
  readonly #layers: LayerStore;
  readonly #dirs: RootDirs;
  readonly #opaqueXattr: string;
  readonly #poolSize: number;
  readonly #pool = new Map<string, PoolEntry>();
  /** Read-only trees by lower chain; a Map iterates least recently used first. */
  readonly #shared = new Map<string, SharedEntry>();
  /** Manifests of live writable snapshots by their root dir, for the runner's acceptCtime. */
  readonly #live = new Map<string, StatManifest>();

  constructor(layers: LayerStore, dirs: RootDirs, opts: { opaqueXattrPrefix?: string; poolSize?: number } = {}) {
    this.#layers = layers;
    this.#dirs = dirs;
    this.#opaqueXattr = `${opts.opaqueXattrPrefix ?? 'user.overlay.'}opaque`;
    this.#poolSize = opts.poolSize ?? DEFAULT_POOL_SIZE;
  }

  async prepare(lower: readonly Digest[], opts: { readonly?: boolean }, ctx: Ctx): Promise<Snapshot> {
    ctx.signal.throwIfAborted();
    for (const d of lower) {
      if (!(await this.#layers.has(d))) throw new BuildError('STORE_CORRUPT', `layer ${d} is not in the layer store`);
    }
    const owner = await currentOwner();
    if (opts.readonly) return this.#prepareShared(lower, owner, ctx);
    const adopted = await this.#adopt(lower);
    let base: string;
    let manifest: StatManifest | undefined;
    if (adopted) {
      ({ base, manifest } = adopted);
    } else {
      base = await this.#materialize(lower, owner, ctx);
      try {
        manifest = await StatManifest.record(join(base, 'root'), ctx.signal);
      } catch (e) {
        await this.#remove(base, owner);
        throw e;
      }
    }
    const id = basename(base);
    const merged = join(base, 'root');
    const kept = join(this.#dirs.tmp, `upper-${id}`);
    if (manifest) this.#live.set(merged, manifest);
    let keep = false;
    let released: Promise<void> | undefined;
    return {
      id,
      merged,
      keepUpper: () => {
        if (!manifest) throw new BuildError('INTERNAL', 'keepUpper() on a read-only snapshot');
        keep = true;
        return kept;
      },
      release: () => {
        released ??= (async () => {
          this.#live.delete(merged);
          if (!keep || !manifest) return this.#remove(base, owner);
          let next: StatManifest;
          try {
            await mkdir(kept, { recursive: false, mode: 0o755 });
            await chmod(kept, 0o755);
            next = await manifest.writeUpper(merged, kept, { opaqueXattr: this.#opaqueXattr, signal: ctx.signal });
          } catch (e) {
            await rm(kept, { recursive: true, force: true });
            await this.#remove(base, owner);
            throw e;
          }
          await this.#park(identity(await lstat(kept, { bigint: true })), { base, manifest: next, chain: [...lower] }, owner);
        })();
        return released;
      },
    };
  }

  /**
   * Takes a runtime's own moves as no change: `rels` (paths inside `merged`, no leading slash)
   * were moved away and back, or had their mtime restored, and only their ctime says so. See
   * StatManifest.acceptCtime; a no-op for read-only or unknown snapshots.
   */
  async acceptCtime(merged: string, rels: readonly string[]): Promise<void> {
    const manifest = this.#live.get(merged);
    if (!manifest) return;
    for (const rel of rels) {
      // The RUN may have turned a parent into a link: resolved in the root, nothing followed (as the runner moved them).
      const st = await atInRoot(merged, rel, (host) => lstat(host, { bigint: true }), { symlinks: 'none' }).catch(() => undefined);
      if (st) manifest.acceptCtime(rel, st);
    }
  }

  /** Removes the pooled working dirs and the shared read-only trees (on worker close). */
  async close(): Promise<void> {
    const owner = await currentOwner();
    const entries = [...this.#pool.values()];
    this.#pool.clear();
    for (const e of entries) await this.#remove(e.base, owner);
    const shared = [...this.#shared.values()];
    this.#shared.clear();
    for (const e of shared) {
      const base = await e.base.catch(() => undefined);
      if (base) await this.#remove(base, owner);
    }
  }

  /**
   * Read-only snapshots (COPY --from sources, exports) of one lower chain share one tree,
   * materialized once; nobody writes into it. Released ones stay for a later reader, the
   * least recently used unreferenced ones beyond SHARED_KEPT go.
   */
  async #prepareShared(lower: readonly Digest[], owner: string, ctx: Ctx): Promise<Snapshot> {
    const key = lower.join(',');
    let entry = this.#shared.get(key);
    if (entry) {
      this.#shared.delete(key);
    } else {
      const e: SharedEntry = { base: this.#materialize(lower, owner, ctx), refs: 0 };
      // A failed materialization is not kept for the next reader.
      e.base.catch(() => {
        if (this.#shared.get(key) === e) this.#shared.delete(key);
      });
      entry = e;
    }
    this.#shared.set(key, entry);
    entry.refs++;
    let base: string;
    try {
      base = await entry.base;
    } catch (e) {
      entry.refs--;
      throw e;
    }
    const held = entry;
    let released = false;
    return {
      id: basename(base),
      merged: join(base, 'root'),
      keepUpper: () => {
        throw new BuildError('INTERNAL', 'keepUpper() on a read-only snapshot');
      },
      release: async () => {
        if (released) return;
        released = true;
        held.refs--;
        await this.#trimShared(owner);
      },
    };
  }

  async #trimShared(owner: string): Promise<void> {
    let unused = [...this.#shared].filter(([, e]) => e.refs === 0);
    while (unused.length > SHARED_KEPT) {
      const [key, e] = unused.shift()!;
      this.#shared.delete(key);
      const base = await e.base.catch(() => undefined);
      if (base) await this.#remove(base, owner);
      unused = [...this.#shared].filter(([, x]) => x.refs === 0);
    }
  }

  async cleanupStale(): Promise<string[]> {
    return cleanupStaleCopies(this.#dirs);
  }

  async #adopt(lower: readonly Digest[]): Promise<{ base: string; manifest: StatManifest } | undefined> {
    const top = lower.at(-1);
    if (!top || this.#pool.size === 0) return undefined;
    const st = await stat(this.#layers.dir(top), { bigint: true }).catch(() => undefined);
    if (!st) return undefined;
    const key = identity(st);
    const entry = this.#pool.get(key);
    const chain = lower.slice(0, -1);
    if (!entry || entry.chain.length !== chain.length || entry.chain.some((d, i) => d !== chain[i])) return undefined;
    this.#pool.delete(key);
    return entry;
  }

  async #park(key: string, entry: PoolEntry, owner: string): Promise<void> {
    this.#pool.set(key, entry);
    // Oldest first out: a Map iterates in insertion order.
    while (this.#pool.size > this.#poolSize) {
      const [oldest, e] = this.#pool.entries().next().value as [string, PoolEntry];
      this.#pool.delete(oldest);
      await this.#remove(e.base, owner);
    }
  }

  /** Makes `copies/<id>/root` from the layers, published only once complete. */
  async #materialize(lower: readonly Digest[], owner: string, ctx: Ctx): Promise<string> {
    const dir = copiesDir(this.#dirs);
    const id = randomBytes(12).toString('hex');
    const base = join(dir, id);
    const staging = join(dir, `.new-${owner.replace(' ', '-')}-${id}`);
    await mkdir(dir, { recursive: true });
    await mkdir(staging, { mode: 0o700 });
    try {
      await writeFile(join(staging, 'owner'), owner);
      const root = join(staging, 'root');
      await mkdir(root);
      await chmod(root, 0o755);
      for (const d of lower) await applyLayerDir(this.#layers.dir(d), root, ctx.signal);
      await rename(staging, base);
    } catch (e) {
      await rm(staging, { recursive: true, force: true });
      throw wrapCopyError(e);
    }
    return base;
  }

  async #remove(base: string, owner: string): Promise<void> {
    await removeCopy(this.#dirs, base, owner);
  }
}

/**
 * Removes what dead tsbuild processes left under `copies/` (working dirs, pooled ones, half-made
 * or half-deleted ones), never a live process's. Returns the names removed.
 */
export async function cleanupStaleCopies(dirs: RootDirs): Promise<string[]> {
  const dir = copiesDir(dirs);
  const removed: string[] = [];
  const owner = await currentOwner();
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const base = join(dir, name);
    if (!(await isStaleOwnedDir(base))) continue;
    await removeCopy(dirs, base, owner);
    removed.push(name);
  }
  return removed;
}

/** Deletes a dir of `copies/` via a `.del-<owner>-` name, so a kill midway still leaves it judged. */
async function removeCopy(dirs: RootDirs, base: string, owner: string): Promise<void> {
  const doomed = join(copiesDir(dirs), `.del-${owner.replace(' ', '-')}-${randomBytes(12).toString('hex')}`);
  await rename(base, doomed);
  await rm(doomed, { recursive: true, force: true });
}

/** A directory's identity across renames: dev, inode and birth time (an inode number alone may be reused). */
function identity(st: BigIntStats): string {
  return `${st.dev}:${st.ino}:${st.birthtimeNs}`;
}

function wrapCopyError(e: unknown): unknown {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'EPERM' && /mknod/.test(String((e as Error).message))) {
    return new BuildError('RUNTIME', `isolation chroot cannot make a device node of the image: ${(e as Error).message}`, {
      cause: e,
      hint: 'run tsbuild with CAP_MKNOD, or use --isolation overlay or rootless',
    });
  }
  return e;
}


import type { Ctx } from '../ctx.js';
import type { Digest } from '../oci/digest.js';

/**
 * A writable (or read-only) root filesystem made from committed layers, for one op: the
 * overlay mount of a RUN, or a working directory where no mount is possible.
 */
export interface Snapshot {
  readonly id: string;
  /** The root filesystem the op reads and writes (a host path). */
  readonly merged: string;
  /** Where writes land while the snapshot is live; absent for a read-only one. */
  readonly upper?: string;
  /**
   * Releases everything the snapshot holds (mounts, directories). Idempotent. Its changes are
   * dropped unless `keepUpper()` was called.
   */
  release(): Promise<void>;
  /**
   * Keeps the changes past `release()`: once release resolves, the returned path (under
   * `dirs.tmp`, on the layer store's filesystem) holds them in overlay format (deletions as
   * char devices 0:0, replaced directories marked with the store's opaque xattr), owned by the
   * caller, who typically diffs it and hands it to `LayerStore.commit`. Throws for a read-only one.
   */
  keepUpper(): string;
}

/** How snapshots are made: overlayfs mounts, or working directories diffed by a stat manifest. */
export interface Snapshotter {
  readonly kind: 'overlay' | 'copy';
  /** A snapshot of the layers `lower` (bottom → top); `readonly` ones have no upper. */
  prepare(lower: readonly Digest[], opts: { readonly?: boolean }, ctx: Ctx): Promise<Snapshot>;
  /** Removes what crashed tsbuild processes left (never a live process's); returns what went. */
  cleanupStale(): Promise<string[]>;
  /** Lets go of what this process keeps between snapshots (caches, pools). */
  close(): Promise<void>;
}

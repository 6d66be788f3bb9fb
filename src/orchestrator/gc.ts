import { lstat, readdir, readFile, readlink, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { BuildError } from '../errors.js';
import { digestFromHex, digestHex, isDigest, type Digest } from '../oci/digest.js';
import { withFileLock } from '../oci/index-lock.js';
import { ImageLayout } from '../oci/image-layout.js';
import { rootDirs, type RootDirs } from '../root-dirs.js';
import { LayerStore } from '../runtime/layer-store.js';
import { CacheStore, type CacheEntryInfo } from '../solver/cache-store.js';
import { sweepHttpMemo, httpMemoDir } from '../solver/http-memo.js';
import { squashMemoDir, sweepSquashMemo } from './squash-layers.js';
import { sweepTimestampRewrites, timestampRewritesDir } from './clamp-image-timestamps.js';
import { compressedLayers, compressedLayersDir, sweepCompressedLayers } from '../exporter/compress-image.js';
import { sweepSelectionMemo } from '../solver/selection-memo.js';
import { gcLockPath, otherLiveBuilds } from './build-registry.js';
import { cleanupAfterCrashes } from './worker.js';

/** Disk usage of a root, in bytes. */
export interface DiskUsage {
  readonly cacheRecords: number;
  readonly layers: { readonly count: number; readonly bytes: number };
  readonly blobs: { readonly count: number; readonly bytes: number };
  /** Bytes held only by the build cache (freed by `prune --all`). */
  readonly cacheOnlyBytes: number;
  /** Bytes referenced by nothing at all (freed by any prune). */
  readonly danglingBytes: number;
}

export interface PruneOptions {
  /** Remove every cache record, not only those whose results no image uses. */
  readonly all?: boolean;
  /** Remove least-recently-used records until what only the cache holds fits in this many bytes. */
  readonly keepStorage?: number;
  /** Only records not used for this many milliseconds are candidates. */
  readonly olderThanMs?: number;
  readonly now?: number;
}

export interface PruneResult {
  readonly records: number;
  readonly layers: number;
  readonly blobs: number;
  readonly bytes: number;
}

interface Inventory {
  readonly dirs: RootDirs;
  readonly store: LayerStore;
  readonly cache: CacheStore;
  readonly records: CacheEntryInfo[];
  /** diffId → bytes of the unpacked layer dir. */
  readonly layers: Map<Digest, number>;
  /** blob digest → bytes. */
  readonly blobs: Map<Digest, number>;
  /** diffId → compressed blob digest, from the layer store. */
  readonly layerBlob: Map<Digest, Digest>;
  /** diffId → the blobs outputs compressed it into (compress-image.ts's memo). */
  readonly compressed: Map<Digest, Digest[]>;
  readonly imageLayers: Set<Digest>;
  readonly imageBlobs: Set<Digest>;
}

/** What is stored under `root` and what a prune could free. `signal` stops the walk (a huge root takes long). */
export async function diskUsage(root: string, signal?: AbortSignal): Promise<DiskUsage> {
  const inv = await inventory(root, signal);
  const images = held(inv, []);
  const all = held(inv, inv.records);
  const bytes = (m: Map<Digest, number>, pick: (d: Digest) => boolean) => [...m].reduce((n, [d, b]) => n + (pick(d) ? b : 0), 0);
  return {
    cacheRecords: inv.records.length,
    layers: { count: inv.layers.size, bytes: bytes(inv.layers, () => true) },
    blobs: { count: inv.blobs.size, bytes: bytes(inv.blobs, () => true) },
    cacheOnlyBytes: bytes(inv.layers, (d) => all.layers.has(d) && !images.layers.has(d)) + bytes(inv.blobs, (d) => all.blobs.has(d) && !images.blobs.has(d)),
    danglingBytes: bytes(inv.layers, (d) => !all.layers.has(d)) + bytes(inv.blobs, (d) => !all.blobs.has(d)),
  };
}

/**
 * Garbage collection: drops cache records (dangling ones — whose results no tagged image uses —
 * or all with `all`, or least-recently-used ones beyond `keepStorage`; `olderThanMs` narrows the
 * candidates), then every layer and blob neither an image nor a remaining record references,
 * and what crashed processes left behind. Runs under the root's gc lock and refuses while a
 * build runs on the root, so nothing a build uses disappears under it. Records go before the
 * layers they name, so a crash mid-prune leaves records pointing at present layers only
 * (and lookups verify that anyway). For the same reason `signal` may stop it between any two
 * removals.
 */
export async function prune(root: string, opts: PruneOptions = {}, signal?: AbortSignal): Promise<PruneResult> {
  const dirs = rootDirs(root);
  return withFileLock(gcLockPath(dirs), async () => {
    const live = await otherLiveBuilds(dirs);
    if (live.length) {
      throw new BuildError('USAGE', `a build is running on ${root} (pid ${live.map((o) => o.split(' ')[0]).join(', ')}); prune when it is done`);
    }
    await cleanupAfterCrashes(root);
    const inv = await inventory(root, signal);
    const now = opts.now ?? Date.now();
    const old = (r: CacheEntryInfo) => opts.olderThanMs === undefined || now - r.lastUsed >= opts.olderThanMs;
    const images = held(inv, []);
    let keep = inv.records.filter((r) => !old(r) || (!opts.all && opts.keepStorage === undefined && r.result.layers.every((l) => images.layers.has(l.diffId))));
    if (opts.keepStorage !== undefined && !opts.all) {
      // Newest first; keep records while what only the cache holds stays within the budget.
      const candidates = inv.records.filter(old).sort((a, b) => b.lastUsed - a.lastUsed);
      keep = inv.records.filter((r) => !old(r));
      for (const r of candidates) {
        const h = held(inv, [...keep, r]);
        // A layer's blobs count too: its tar (a build stores it uncompressed) and outputs' compressed copies.
        const bytes = [...h.layers].reduce((n, d) => n + (images.layers.has(d) ? 0 : inv.layers.get(d) ?? 0), 0) + [...h.blobs].reduce((n, d) => n + (images.blobs.has(d) ? 0 : inv.blobs.get(d) ?? 0), 0);
        if (bytes <= opts.keepStorage) keep.push(r);
      }
    }
    const keepKeys = new Set(keep.map((r) => r.key));
    let records = 0;
    for (const r of inv.records) {
      if (keepKeys.has(r.key)) continue;
      signal?.throwIfAborted();
      await inv.cache.remove(r.key);
      records++;
    }
    const h = held(inv, keep);
    let bytes = 0;
    let layers = 0;
    let blobs = 0;
    for (const [d, size] of inv.layers) {
      if (h.layers.has(d)) continue;
      signal?.throwIfAborted();
      await inv.store.remove(d);
      layers++;
      bytes += size;
    }
    for (const [d, size] of inv.blobs) {
      if (h.blobs.has(d)) continue;
      signal?.throwIfAborted();
      await rm(join(dirs.store, 'blobs', 'sha256', digestHex(d)), { force: true });
      blobs++;
      bytes += size;
    }
    await removeDanglingLinks(dirs);
    await sweepSelectionMemo(join(dirs.cache, 'selections'), (d) => h.layers.has(d) && inv.layers.has(d));
    await sweepHttpMemo(httpMemoDir(dirs), (d) => h.layers.has(d) && inv.layers.has(d));
    await sweepTimestampRewrites(timestampRewritesDir(dirs), (d) => h.layers.has(d) && inv.layers.has(d));
    await sweepSquashMemo(squashMemoDir(dirs), (d) => h.layers.has(d) && inv.layers.has(d));
    await sweepCompressedLayers(compressedLayersDir(dirs), (d) => h.layers.has(d));
    // RUN --mount=type=cache directories are build cache too (BuildKit's prune --all drops
    // them); no build runs now (checked above), so none is in use.
    if (opts.all) await rm(join(dirs.cache, 'mounts'), { recursive: true, force: true });
    // So are the step history (--explain's memory) and the context stat caches: small per entry,
    // but they only ever grow, one file per Dockerfile step and per context directory built.
    if (opts.all) for (const d of ['steps', 'stat']) await rm(join(dirs.cache, d), { recursive: true, force: true });
    return { records, layers, blobs, bytes };
  }, { signal });
}

/** Layers and blobs held by the images plus `records`. */
function held(inv: Inventory, records: readonly CacheEntryInfo[]): { layers: Set<Digest>; blobs: Set<Digest> } {
  const layers = new Set(inv.imageLayers);
  const blobs = new Set(inv.imageBlobs);
  for (const r of records) for (const l of r.result.layers) layers.add(l.diffId);
  for (const l of layers) {
    const b = inv.layerBlob.get(l);
    if (b) blobs.add(b);
    // An output's compressed copy lives as long as its layer, so the next export or push reuses it.
    for (const c of inv.compressed.get(l) ?? []) blobs.add(c);
  }
  return { layers, blobs };
}

async function inventory(root: string, signal: AbortSignal | undefined): Promise<Inventory> {
  const dirs = rootDirs(root);
  const store = new LayerStore(dirs);
  const cache = new CacheStore(join(dirs.cache, 'records'), (d) => store.has(d));
  const records = await cache.list();
  const layers = new Map<Digest, number>();
  const layerBlob = new Map<Digest, Digest>();
  for (const name of await readdir(dirs.layers).catch(() => [] as string[])) {
    if (!/^[a-f0-9]{64}$/.test(name)) continue;
    const d = digestFromHex(name);
    layers.set(d, await treeBytes(join(dirs.layers, name), signal));
    const blob = await store.blob(d).catch(() => undefined);
    if (blob && isDigest(blob.digest)) layerBlob.set(d, blob.digest);
  }
  const blobs = new Map<Digest, number>();
  const blobDir = join(dirs.store, 'blobs', 'sha256');
  for (const name of await readdir(blobDir).catch(() => [] as string[])) {
    if (!/^[a-f0-9]{64}$/.test(name)) continue;
    signal?.throwIfAborted();
    blobs.set(digestFromHex(name), (await lstat(join(blobDir, name))).size);
  }
  const imageLayers = new Set<Digest>();
  const imageBlobs = new Set<Digest>();
  const layout = await ImageLayout.open(dirs.store, { create: true, tmpDir: dirs.tmp });
  const index = await layout.readIndex();
  const visit = async (d: Digest): Promise<void> => {
    if (imageBlobs.has(d)) return;
    signal?.throwIfAborted();
    imageBlobs.add(d);
    const doc = JSON.parse(await readFile(layout.blobs.path(d), 'utf8').catch(() => 'null')) as {
      manifests?: { digest: string }[];
      config?: { digest: string };
      layers?: { digest: string }[];
    } | null;
    for (const m of doc?.manifests ?? []) if (isDigest(m.digest)) await visit(m.digest);
    if (doc?.config && isDigest(doc.config.digest)) {
      imageBlobs.add(doc.config.digest);
      const config = JSON.parse(await readFile(layout.blobs.path(doc.config.digest), 'utf8').catch(() => 'null')) as { rootfs?: { diff_ids?: string[] } } | null;
      for (const id of config?.rootfs?.diff_ids ?? []) if (isDigest(id)) imageLayers.add(id);
    }
    for (const l of doc?.layers ?? []) if (isDigest(l.digest)) imageBlobs.add(l.digest);
  };
  for (const m of index.manifests) if (isDigest(m.digest)) await visit(m.digest);
  const compressed = await compressedLayers(compressedLayersDir(dirs));
  return { dirs, store, cache, records, layers, blobs, layerBlob, compressed, imageLayers, imageBlobs };
}

async function removeDanglingLinks(dirs: RootDirs): Promise<void> {
  for (const name of await readdir(dirs.links).catch(() => [] as string[])) {
    const p = join(dirs.links, name);
    const target = await readlink(p).catch(() => undefined);
    if (target === undefined) continue;
    if (!(await lstat(join(dirs.links, target)).catch(() => undefined))) await rm(p, { force: true });
  }
}

async function treeBytes(path: string, signal: AbortSignal | undefined): Promise<number> {
  signal?.throwIfAborted();
  const st = await lstat(path);
  if (!st.isDirectory()) return st.isFile() ? st.size : 0;
  let n = 0;
  for (const name of await readdir(path)) n += await treeBytes(join(path, name), signal);
  return n;
}

/**
 * The configured GC policy (tsbuild.toml `[gc]`), applied after a successful build as
 * buildkitd applies its keep-storage policy. Another build running on the root is not an
 * error here: that build's own end applies the policy, so this one skips it.
 * @returns what was pruned, or undefined when there is no policy or it was skipped.
 */
export async function applyGcPolicy(root: string, policy: Pick<PruneOptions, 'keepStorage' | 'olderThanMs'>, signal?: AbortSignal): Promise<PruneResult | undefined> {
  if (policy.keepStorage === undefined && policy.olderThanMs === undefined) return undefined;
  try {
    return await prune(root, policy, signal);
  } catch (e) {
    if (e instanceof BuildError && e.code === 'USAGE') return undefined;
    throw e;
  }
}

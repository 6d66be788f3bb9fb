import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Ctx } from '../ctx.js';
import type { ContentStore } from '../oci/content-store.js';
import { digestHex, isDigest, sha256, type Digest } from '../oci/digest.js';
import type { Descriptor, ImageConfig } from '../oci/image.js';
import { writeFileAtomic } from '../oci/image-layout.js';
import { readImage } from '../oci/image-reader.js';
import { clampLayerTimestamps } from '../oci/layer/clamp-timestamps.js';
import { MediaType } from '../oci/media-types.js';
import type { RootDirs } from '../root-dirs.js';
import { sweepMemoDir } from '../solver/memo-sweep.js';
import { storeImage, type AssembledImage } from './assemble-image.js';
import { compressedLayer, compressedLayersDir } from '../exporter/compress-image.js';
import { DEFAULT_COMPRESSION, type CompressionOptions } from '../oci/layer/layer-compression.js';
import { cacheConfig, INLINE_CACHE_KEY, type CacheConfig } from './cache-transfer/cache-manifest.js';

// 2: rewritten layers are stored uncompressed (version 1 entries name gzip blobs).
const VERSION = 2;

/**
 * BuildKit marks each layer its exporter rewrote with the epoch (util/converter/converter.go,
 * labelRewrittenTimestamp), so a reader can tell rewritten layers from a base image's.
 */
export const REWRITTEN_TIMESTAMP = 'buildkit/rewritten-timestamp';

interface MemoFile {
  readonly version: number;
  /** The layer rewritten (kept so prune can drop entries whose layer is gone). */
  readonly source: Digest;
  readonly epoch: number;
  readonly diffId: Digest;
  readonly digest: Digest;
  readonly size: number;
}

/**
 * `rewrite-timestamp` for a whole image: each layer this build made (`img.ownLayers`) is
 * replaced by its copy with mtimes clamped to `epoch`; the base image's layers stay byte for
 * byte (moby/buildkit#4805 rewrote them too). The config gets the new diff_ids, everything
 * else as it was, and a new manifest is stored with the same annotations.
 *
 * Rewrites are remembered under `<cache>/timestamp-rewrites/` (layer diffId + epoch → blob), so
 * a cached rebuild reuses them instead of rewriting again; an entry whose blob is gone is ignored.
 */
export async function clampImageTimestamps(blobs: ContentStore, dirs: RootDirs, img: AssembledImage, epoch: Date, ctx: Ctx, inlineCompression: CompressionOptions = DEFAULT_COMPRESSION): Promise<AssembledImage> {
  if (img.ownLayers.length === 0) return img;
  const seconds = Math.floor(epoch.getTime() / 1000);
  const stored = await readImage(blobs, img.manifest, undefined, { anyPlatform: true });
  const diffIds = [...img.imageConfig.rootfs.diff_ids];
  const layers: Descriptor[] = [...stored.layers];
  for (const i of img.ownLayers) {
    ctx.signal.throwIfAborted();
    const source = diffIds[i]!;
    const memo = join(timestampRewritesDir(dirs), `${digestHex(sha256(`${source}\n${seconds}`))}.json`);
    const rewritten = (await recall(blobs, memo, source, seconds)) ?? (await remember(memo, source, seconds, await clampLayerTimestamps(blobs, layers[i]!, seconds, ctx.signal)));
    diffIds[i] = rewritten.diffId;
    layers[i] = { mediaType: MediaType.ociLayer, digest: rewritten.digest, size: rewritten.size, annotations: { [REWRITTEN_TIMESTAMP]: String(seconds) } };
  }
  const config: ImageConfig = { ...img.imageConfig, rootfs: { ...img.imageConfig.rootfs, diff_ids: diffIds } };
  const inline = (img.imageConfig as Record<string, unknown>)[INLINE_CACHE_KEY] as CacheConfig | undefined;
  if (inline) {
    // The inline cache names blobs as outputs carry them (compressed), not as stored.
    const carried = await Promise.all(layers.map((l, i) => (img.ownLayers.includes(i) ? compressedLayer(blobs, compressedLayersDir(dirs), l, diffIds[i]!, inlineCompression, ctx.signal) : l)));
    (config as Record<string, unknown>)[INLINE_CACHE_KEY] = withLayersReplaced(inline, img.imageConfig.rootfs.diff_ids, diffIds, carried);
  }
  return { ...(await storeImage(blobs, config, layers, stored.manifest.annotations ?? {})), ownLayers: img.ownLayers };
}

/**
 * The inline cache (--cache-to type=inline) pointed at the layers as built, which the image no
 * longer carries: its records now name the clamped ones, so --cache-from this image serves
 * them (and a build with the same epoch clamps them to themselves: the same image again).
 */
function withLayersReplaced(cache: CacheConfig, before: readonly Digest[], after: readonly Digest[], layers: readonly Descriptor[]): CacheConfig {
  const to = new Map<Digest, Digest>();
  before.forEach((d, i) => {
    if (after[i] !== d) to.set(d, after[i]!);
  });
  const records = cache.records.map((r) => ({ ...r, layers: r.layers.map((d) => to.get(d) ?? d) }));
  const blobs = new Map<Digest, Descriptor>();
  for (const [d, b] of Object.entries(cache.blobs) as [Digest, Descriptor][]) {
    const n = to.get(d);
    blobs.set(n ?? d, n ? layers[after.indexOf(n)]! : b);
  }
  return cacheConfig(records, blobs);
}

async function recall(blobs: ContentStore, path: string, source: Digest, epoch: number): Promise<MemoFile | undefined> {
  let m: Partial<MemoFile>;
  try {
    m = JSON.parse(await readFile(path, 'utf8')) as Partial<MemoFile>;
  } catch {
    return undefined;
  }
  if (m.version !== VERSION || m.source !== source || m.epoch !== epoch || !isDigest(m.diffId ?? '') || !isDigest(m.digest ?? '') || typeof m.size !== 'number') return undefined;
  // prune may have taken the blob while no image named it.
  return (await blobs.stat(m.digest!))?.size === m.size ? (m as MemoFile) : undefined;
}

async function remember(path: string, source: Digest, epoch: number, blob: { diffId: Digest; digest: Digest; size: number }): Promise<MemoFile> {
  const m: MemoFile = { version: VERSION, source, epoch, diffId: blob.diffId, digest: blob.digest, size: blob.size };
  await mkdir(join(path, '..'), { recursive: true });
  await writeFileAtomic(path, JSON.stringify(m));
  return m;
}

export function timestampRewritesDir(dirs: RootDirs): string {
  return join(dirs.cache, 'timestamp-rewrites');
}

/** Prune's sweep: entries whose source layer is gone. @returns how many went. */
export function sweepTimestampRewrites(dir: string, present: (diffId: Digest) => boolean): Promise<number> {
  return sweepMemoDir(dir, async (path) => {
    const source = await readFile(path, 'utf8')
      .then((t) => (JSON.parse(t) as Partial<MemoFile>).source)
      .catch(() => undefined);
    return typeof source === 'string' && isDigest(source) ? [source] : undefined;
  }, present);
}

import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Ctx } from '../../ctx.js';
import type { ContentStore } from '../../oci/content-store.js';
import type { Digest } from '../../oci/digest.js';
import type { Descriptor } from '../../oci/image.js';
import { ImageLayout } from '../../oci/image-layout.js';
import { MediaType } from '../../oci/media-types.js';
import { parseReference } from '../../oci/reference.js';
import { pushImage } from '../../remote/push.js';
import type { RegistryClient } from '../../remote/registry-client.js';
import type { RootfsResult } from '../../solver/graph.js';
import type { Worker } from '../../solver/worker.js';
import { compressedLayer, compressedLayersDir } from '../../exporter/compress-image.js';
import { DEFAULT_COMPRESSION, type CompressionOptions } from '../../oci/layer/layer-compression.js';
import { cacheConfig, cacheManifest, type CacheConfig, type ExportedMount, type ExportedRecord } from './cache-manifest.js';
import type { CacheExportSpec, CacheMode } from './cache-spec.js';

/** The tag an exported cache carries in a local (OCI layout) cache directory. */
export const LOCAL_CACHE_TAG = 'cache';

/** What was exported. */
export interface CacheExportResult {
  readonly manifest: Descriptor;
  readonly records: number;
  readonly layers: number;
}

/**
 * Writes the cache records `records` (this build's, already chosen by mode) and their layer
 * blobs as a cache manifest (see cache-manifest.ts) to a registry or an OCI layout directory.
 * The manifest and config are first stored in the local content store, so a registry push is
 * an ordinary image push (existing blobs skipped, uploads resumable). Records whose layers have
 * no compressed blob are left out: they could not be imported anyway.
 */
export async function exportCache(
  worker: Worker,
  records: readonly ExportedRecord[],
  spec: Exclude<CacheExportSpec, { type: 'inline' }>,
  registry: RegistryClient | undefined,
  ctx: Ctx,
  /** Cache mounts packed for this export (`mounts=`), already in the content store. */
  mounts: readonly ExportedMount[] = [],
): Promise<CacheExportResult> {
  const base = await cacheConfigFor(worker, records, spec.compression ?? DEFAULT_COMPRESSION, ctx.signal);
  // When each layer was made, so a step served from this cache elsewhere records the time of the
  // build that made it, as BuildKit's cache config carries createdAt: the rebuilt image is the same.
  const created: Record<string, string> = {};
  for (const d of Object.keys(base.blobs)) created[d] = (await worker.layers.createdAt(d as Digest)).toISOString();
  const config: CacheConfig = { ...base, created, ...(mounts.length ? { mounts } : {}) };
  const usable = config.records;
  const blobs = new Map(Object.entries(config.blobs));
  const configBlob = await worker.blobs.putBytes(JSON.stringify(config));
  const manifestBlob = await worker.blobs.putBytes(JSON.stringify(cacheManifest(config, configBlob)));
  const manifest: Descriptor = { mediaType: MediaType.ociManifest, digest: manifestBlob.digest, size: manifestBlob.size };
  const layerBlobs = [...new Map([...blobs.values(), ...mounts.map((m) => m.blob)].map((b) => [b.digest, b])).values()];
  switch (spec.type) {
    case 'registry': {
      if (!registry) throw new Error('exportCache: a registry cache needs a RegistryClient');
      const ref = parseReference(spec.ref);
      await pushImage(registry, worker.blobs, manifest, ref, ref.digest ? undefined : (ref.tag ?? 'latest'), {}, ctx);
      break;
    }
    case 'local': {
      const layout = await ImageLayout.open(spec.dest, { create: true });
      try {
        for (const b of [{ digest: configBlob.digest, size: configBlob.size }, ...layerBlobs, manifest]) await copyBlob(worker.blobs, layout.blobs, b, ctx);
        await layout.tag(LOCAL_CACHE_TAG, manifest);
      } finally {
        await rm(join(spec.dest, '.tmp'), { recursive: true, force: true });
      }
      break;
    }
    default: {
      const never: never = spec;
      return never;
    }
  }
  return { manifest, records: usable.length, layers: layerBlobs.length };
}

/** `--cache-to type=inline`: the config of the final image's records (mode=min), for its image config. */
export function inlineCacheConfig(worker: Worker, used: ReadonlyMap<Digest, RootfsResult>, finals: readonly RootfsResult[], compression: CompressionOptions, signal: AbortSignal): Promise<CacheConfig> {
  return cacheConfigFor(worker, cacheRecords(used, finals, 'min'), compression, signal);
}

/**
 * The cache config for `records`, leaving out records whose layers have no blob in the store.
 * Layers a build stored uncompressed are listed (and exported) in `compression`, as an image
 * output would carry them; the conversion is remembered, so an image export shares the blobs.
 */
export async function cacheConfigFor(worker: Worker, records: readonly ExportedRecord[], compression: CompressionOptions, signal: AbortSignal): Promise<CacheConfig> {
  const blobs = new Map<Digest, Descriptor>();
  const usable: ExportedRecord[] = [];
  for (const r of records) {
    let ok = true;
    for (const d of r.layers) {
      if (blobs.has(d)) continue;
      const b = await worker.layers.blob(d);
      if (!b || !(await worker.blobs.has(b.digest))) ok = false;
      else blobs.set(d, await compressedLayer(worker.blobs, compressedLayersDir(worker.dirs), b, d, compression, signal));
    }
    if (ok) usable.push(r);
  }
  return cacheConfig(usable, blobs);
}

/** Copies one blob between content stores unless the destination has it; the copy is verified on commit. */
export async function copyBlob(from: ContentStore, to: ContentStore, blob: { digest: Digest; size: number }, ctx: Ctx): Promise<void> {
  const have = await to.stat(blob.digest);
  if (have?.size === blob.size) return;
  const w = to.createWriter({ digest: blob.digest, size: blob.size });
  try {
    await pipeline(from.openRead(blob.digest), w.stream, { signal: ctx.signal });
    await w.commit();
  } catch (e) {
    await w.abort();
    throw e;
  }
}

/**
 * The records `--cache-to` exports. `max`: every record the build used or made. `min`: those
 * whose layers are a prefix of a final image's (one per platform) — the steps of the final stage's chain, whose
 * layers the image holds anyway — so no intermediate stage's layer is uploaded.
 */
export function cacheRecords(used: ReadonlyMap<Digest, RootfsResult>, finals: readonly RootfsResult[], mode: CacheMode): ExportedRecord[] {
  const finalLayers = finals.map((f) => f.layers.map((l) => l.diffId));
  const out: ExportedRecord[] = [];
  for (const [key, r] of used) {
    const layers = r.layers.map((l) => l.diffId);
    if (mode === 'min' && !finalLayers.some((f) => layers.every((d, i) => f[i] === d))) continue;
    out.push({ key, layers });
  }
  return out;
}

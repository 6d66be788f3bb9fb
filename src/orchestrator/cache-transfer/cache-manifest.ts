import { BuildError } from '../../errors.js';
import { isDigest, type Digest } from '../../oci/digest.js';
import type { Descriptor } from '../../oci/image.js';
import { MediaType } from '../../oci/media-types.js';
import type { PortableCacheMount } from '../../solver/cache-mount-transfer.js';

/**
 * The exported cache's format (tsbuild's own, documented in src/solver/README.md): one OCI
 * image manifest whose config blob (media type {@link CACHE_CONFIG_MEDIA_TYPE}) lists the cache
 * records, and whose layers are the compressed layer blobs those records use. BuildKit's cache
 * config describes its own cache-map graph, whose keys tsbuild can't compute, so matching it
 * would only look compatible; a plain manifest is what every registry and OCI layout stores,
 * copies (skopeo) and garbage-collects like any image.
 */
export const CACHE_CONFIG_MEDIA_TYPE = 'application/vnd.tsbuild.cache.config.v1+json';

/**
 * `--cache-to type=inline`: the image config's top-level field that holds a {@link CacheConfig}
 * over the image's own layers (BuildKit uses `moby.buildkit.cache.v0` the same way). Runtimes
 * ignore unknown config fields; `--cache-from` pointing at the image reads it.
 */
export const INLINE_CACHE_KEY = 'tsbuild.cache.v1';

/** One record: a cache key and the diffIDs of its result's layers, bottom first. */
export interface ExportedRecord {
  readonly key: Digest;
  readonly layers: readonly Digest[];
}

/**
 * A `RUN --mount=type=cache` directory carried by the cache (`--cache-to …,mounts=`): its
 * identity, and its contents as one compressed tar blob (a layer of the manifest), so content
 * that did not change is a blob the destination already has.
 */
export interface ExportedMount extends PortableCacheMount {
  readonly blob: Descriptor;
}

export interface CacheConfig {
  readonly version: 1;
  readonly records: readonly ExportedRecord[];
  /** diffID → the compressed blob (a layer of the manifest) it unpacks from. */
  readonly blobs: Readonly<Record<string, Descriptor>>;
  /** diffID → when its layer was made (ISO 8601); registry and local caches only, absent inline. */
  readonly created?: Readonly<Record<string, string>>;
  /** Cache mounts, sorted by key (registry and local caches with `mounts=` only). */
  readonly mounts?: readonly ExportedMount[];
}

/** The manifest over a stored config blob: every layer blob the records use, once, in first-use order. */
export function cacheManifest(config: CacheConfig, configBlob: { readonly digest: Digest; readonly size: number }): object {
  const all = [...Object.values(config.blobs), ...(config.mounts ?? []).map((m) => m.blob)];
  const layers = [...new Map(all.map((b) => [b.digest, { mediaType: b.mediaType, digest: b.digest, size: b.size }])).values()];
  return { schemaVersion: 2, mediaType: MediaType.ociManifest, config: { mediaType: CACHE_CONFIG_MEDIA_TYPE, digest: configBlob.digest, size: configBlob.size }, layers };
}

/** The config for `records` (sorted by key, so equal caches are equal bytes); `blobs` must know every diffID they use. */
export function cacheConfig(records: readonly ExportedRecord[], blobs: ReadonlyMap<Digest, Descriptor>): CacheConfig {
  const sorted = [...records].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const out: Record<string, Descriptor> = {};
  for (const r of sorted) for (const d of r.layers) out[d] = blobs.get(d)!;
  return { version: 1, records: sorted, blobs: out };
}

/** Validates a cache config read from outside; anything malformed is BuildError('REGISTRY') naming `from`. */
export function parseCacheConfig(bytes: Buffer, from: string): CacheConfig {
  const bad = (why: string): never => {
    throw new BuildError('REGISTRY', `cache ${from}: not a tsbuild cache (${why})`, { hint: 'point --cache-from at what --cache-to wrote' });
  };
  let c: CacheConfig;
  try {
    c = JSON.parse(bytes.toString('utf8')) as CacheConfig;
  } catch {
    return bad('config is not JSON');
  }
  if (c?.version !== 1 || !Array.isArray(c.records) || typeof c.blobs !== 'object' || c.blobs === null) bad('unknown config version or shape');
  for (const r of c.records) {
    if (!isDigest(r?.key) || !Array.isArray(r.layers)) bad('a record without key or layers');
    for (const d of r.layers) {
      const b = c.blobs[d];
      if (!isDigest(d) || !b || !isDigest(b.digest) || typeof b.size !== 'number') bad(`layer ${String(d)} has no blob`);
    }
  }
  if (c.mounts !== undefined) {
    if (!Array.isArray(c.mounts)) bad('mounts is not a list');
    for (const m of c.mounts) {
      const owner = m?.owner;
      const ownerOk = owner === undefined || (typeof owner === 'object' && owner !== null && [owner.mode, owner.uid, owner.gid].every((n) => Number.isSafeInteger(n) && n >= 0));
      if (typeof m?.id !== 'string' || !['shared', 'private', 'locked'].includes(m.sharing) || !ownerOk || !isDigest(m.blob?.digest) || !Number.isSafeInteger(m.blob.size) || m.blob.size < 0) bad('a cache mount without id, sharing or blob');
    }
  }
  if (c.created !== undefined && (typeof c.created !== 'object' || c.created === null || Object.values(c.created).some((t) => typeof t !== 'string' || Number.isNaN(Date.parse(t))))) bad('layer times are not dates');
  return c;
}

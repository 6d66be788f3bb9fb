import { BuildError } from '../errors.js';
import type { ContentStore } from './content-store.js';
import { isDigest } from './digest.js';
import { hostPlatform, type Descriptor, type ImageConfig, type OciImageIndex, type OciImageManifest, type Platform } from './image.js';
import type { IndexDescriptor } from './image-layout.js';
import { MediaType } from './media-types.js';
import { formatPlatform, matchPlatform } from './platform.js';

/** An image manifest with checked digests (OCI or Docker schema2; same shape). */
export interface Manifest extends Omit<OciImageManifest, 'config' | 'layers'> {
  config: Descriptor;
  layers: Descriptor[];
}

/**
 * Read-only view of one single-platform image whose manifest, config and (normally) layers are
 * in a ContentStore. Layers are not read here; open them with `blobs.openRead(layer.digest)`.
 */
export interface StoredImage {
  /** The image manifest itself (after choosing from an index, if one was given). */
  readonly manifestDescriptor: Descriptor;
  readonly manifest: Manifest;
  readonly configDescriptor: Descriptor;
  readonly config: ImageConfig;
  /** Compressed layer descriptors, base first; `config.rootfs.diff_ids[i]` is layer i's diffID. */
  readonly layers: readonly Descriptor[];
}

const MANIFEST_TYPES: ReadonlySet<string> = new Set([MediaType.ociManifest, MediaType.dockerManifest]);
const INDEX_TYPES: ReadonlySet<string> = new Set([MediaType.ociIndex, MediaType.dockerManifestList]);

/**
 * Reads the image `manifest` points at. Accepts OCI and Docker schema2 manifests; an OCI index
 * or Docker manifest list resolves to the entry for `platform` (default: the host's; with
 * `anyPlatform`, the first entry when none matches: for listing an index of other platforms). Checks
 * that the config has one diffID per layer. Malformed content → BuildError('STORE_CORRUPT');
 * no entry for the platform → BuildError('IMAGE_NOT_FOUND').
 */
export async function readImage(blobs: ContentStore, manifest: Descriptor, platform: Platform = hostPlatform(), opts: { anyPlatform?: boolean } = {}): Promise<StoredImage> {
  let desc: Descriptor = manifest;
  for (let depth = 0; ; depth++) {
    if (depth > 4) throw new BuildError('STORE_CORRUPT', `${manifest.digest}: indexes nested too deeply`);
    const raw = await blobs.readJson<{ mediaType?: string; schemaVersion?: number; manifests?: unknown; layers?: unknown }>(desc.digest);
    const kind = raw.mediaType ?? desc.mediaType ?? (Array.isArray(raw.manifests) ? MediaType.ociIndex : MediaType.ociManifest);
    if (INDEX_TYPES.has(kind) || (Array.isArray(raw.manifests) && !Array.isArray(raw.layers))) {
      desc = pickPlatform(raw as unknown as OciImageIndex, platform, desc, opts.anyPlatform ?? false);
      continue;
    }
    if (!MANIFEST_TYPES.has(kind)) throw new BuildError('STORE_CORRUPT', `${desc.digest}: unsupported manifest media type ${JSON.stringify(kind)}`);
    const m = checkManifest(raw, desc);
    const config = await blobs.readJson<ImageConfig>(m.config.digest);
    const diffIds = config.rootfs?.diff_ids;
    if (!Array.isArray(diffIds)) throw new BuildError('STORE_CORRUPT', `config ${m.config.digest} has no rootfs.diff_ids`);
    if (diffIds.length !== m.layers.length) {
      throw new BuildError('STORE_CORRUPT', `image ${desc.digest} has ${m.layers.length} layers but its config lists ${diffIds.length} diff_ids`);
    }
    for (const d of diffIds) if (!isDigest(d)) throw new BuildError('STORE_CORRUPT', `config ${m.config.digest}: invalid diff_id ${JSON.stringify(d)}`);
    const manifestDescriptor: Descriptor = { mediaType: kind, digest: desc.digest, size: desc.size, ...(desc.annotations ? { annotations: desc.annotations } : {}) };
    return { manifestDescriptor, manifest: m, configDescriptor: m.config, config, layers: m.layers };
  }
}

function checkManifest(raw: unknown, desc: Descriptor): Manifest {
  const m = raw as Manifest;
  if (m.schemaVersion !== 2) throw new BuildError('STORE_CORRUPT', `${desc.digest}: manifest schemaVersion is ${String(m.schemaVersion)}, expected 2`);
  if (!m.config || !isDigest(m.config.digest)) throw new BuildError('STORE_CORRUPT', `${desc.digest}: manifest has no valid config descriptor`);
  if (!Array.isArray(m.layers)) throw new BuildError('STORE_CORRUPT', `${desc.digest}: manifest has no layers array`);
  for (const l of m.layers) {
    if (!l || !isDigest(l.digest) || typeof l.size !== 'number') throw new BuildError('STORE_CORRUPT', `${desc.digest}: invalid layer descriptor ${JSON.stringify(l)}`);
  }
  return m;
}

/** The index entry for `platform` (see matchPlatform). */
function pickPlatform(idx: OciImageIndex, platform: Platform, desc: Descriptor, anyPlatform: boolean): Descriptor {
  const entries = (idx.manifests ?? []) as IndexDescriptor[];
  const chosen = matchPlatform(entries, platform) ?? (anyPlatform ? entries[0] : undefined);
  if (!chosen) {
    const have = entries.map((e) => (e.platform ? formatPlatform(e.platform) : 'unknown')).join(', ');
    throw new BuildError('IMAGE_NOT_FOUND', `image index ${desc.digest} has no manifest for ${platform.os}/${platform.architecture} (has: ${have || 'none'})`);
  }
  if (!isDigest(chosen.digest)) throw new BuildError('STORE_CORRUPT', `${desc.digest}: index entry has invalid digest ${JSON.stringify(chosen.digest)}`);
  return chosen;
}

import { BuildError } from '../errors.js';
import { isAttestation } from '../oci/attestation.js';
import type { ContentStore } from '../oci/content-store.js';
import type { Descriptor, Platform } from '../oci/image.js';
import { MediaType } from '../oci/media-types.js';

/**
 * BuildKit's `oci-mediatypes=false`: an image (or index) with Docker's schema2 media types
 * instead of OCI's. Only manifests and indexes are rewritten; config and layer bytes are the
 * same under either type, so their digests stay and nothing is recompressed (outputs compress
 * before this: compress-image.ts).
 */

/** Docker's type for each OCI type an image tree can hold; Docker types (a base pulled as such) stay. */
const DOCKER_TYPE: Readonly<Record<string, string>> = {
  [MediaType.ociManifest]: MediaType.dockerManifest,
  [MediaType.ociIndex]: MediaType.dockerManifestList,
  [MediaType.ociConfig]: MediaType.dockerConfig,
  [MediaType.ociLayerGzip]: MediaType.dockerLayerGzip,
  [MediaType.ociLayer]: MediaType.dockerLayer,
  // Not in Docker's schema2 spec, but containerd's and BuildKit's (zstd layers keep Docker types possible).
  [MediaType.ociLayerZstd]: MediaType.dockerLayerZstd,
  [MediaType.dockerLayerZstd]: MediaType.dockerLayerZstd,
  [MediaType.ociForeignLayerGzip]: MediaType.dockerForeignLayerGzip,
  [MediaType.dockerManifest]: MediaType.dockerManifest,
  [MediaType.dockerManifestList]: MediaType.dockerManifestList,
  [MediaType.dockerConfig]: MediaType.dockerConfig,
  [MediaType.dockerLayerGzip]: MediaType.dockerLayerGzip,
  [MediaType.dockerLayer]: MediaType.dockerLayer,
  [MediaType.dockerForeignLayerGzip]: MediaType.dockerForeignLayerGzip,
};

interface ManifestJson {
  readonly config: Descriptor;
  readonly layers: readonly Descriptor[];
  readonly annotations?: Readonly<Record<string, string>>;
}

interface IndexEntry extends Descriptor {
  readonly platform?: Platform;
}

function dockerType(what: string, d: { readonly mediaType?: string; readonly digest: string }): string {
  const t = d.mediaType !== undefined ? DOCKER_TYPE[d.mediaType] : undefined;
  if (t === undefined) {
    // e.g. an OCI artifact or a nondistributable zstd layer: nothing to map it to.
    throw new BuildError('USAGE', `oci-mediatypes=false: ${what} ${d.digest} has media type ${JSON.stringify(d.mediaType ?? '')}, which Docker's schema2 has no type for`, {
      hint: 'export this image with oci-mediatypes=true',
    });
  }
  return t;
}

/** A schema2 descriptor: what Docker's has (urls for foreign layers), no OCI annotations. */
function dockerDescriptor(what: string, d: Descriptor): Record<string, unknown> {
  return { mediaType: dockerType(what, d), size: d.size, digest: d.digest, ...(d.urls?.length ? { urls: d.urls } : {}) };
}

/**
 * The schema2 manifest for the OCI manifest `m`, as JSON text (fixed key order: same input,
 * same bytes). Layer and config annotations go, as BuildKit drops them for Docker types; the
 * manifest's own annotations (`--annotation`) stay, as BuildKit keeps them there too.
 */
export function dockerManifestJson(m: ManifestJson): string {
  return JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.dockerManifest,
    config: dockerDescriptor('config', m.config),
    layers: m.layers.map((l) => dockerDescriptor('layer', l)),
    ...(m.annotations && Object.keys(m.annotations).length > 0 ? { annotations: m.annotations } : {}),
  });
}

/**
 * The manifest list over `entries` (already Docker-typed), as JSON text. Attestation manifests
 * are refused, as BuildKit does ("cannot export attestations with oci-mediatypes=false"): their
 * index annotations have no place in a manifest list. Other entry annotations are dropped.
 */
export function dockerManifestListJson(entries: readonly IndexEntry[]): string {
  refuseAttestations(entries);
  return JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.dockerManifestList,
    manifests: entries.map((e) => ({ mediaType: dockerType('manifest', e), size: e.size, digest: e.digest, ...(e.platform ? { platform: e.platform } : {}) })),
  });
}

function refuseAttestations(entries: readonly IndexEntry[]): void {
  const attestation = entries.find((e) => isAttestation(e));
  if (attestation) {
    throw new BuildError('USAGE', `cannot export attestations with "oci-mediatypes=false" (attestation manifest ${attestation.digest})`, {
      hint: 'drop oci-mediatypes=false from this --output, or build without --provenance / --attest',
    });
  }
}

/**
 * The Docker-typed copy of the image or index `desc` from `blobs`: converted manifests (and
 * index) are written into `blobs`, and the new top descriptor is returned. Docker-typed input
 * (a base image pulled as such) is rewritten the same way.
 */
export async function toDockerMediaTypes(blobs: ContentStore, desc: Descriptor, signal: AbortSignal, depth = 0): Promise<Descriptor> {
  signal.throwIfAborted();
  if (depth > 4) throw new BuildError('STORE_CORRUPT', `${desc.digest}: indexes nested too deeply`);
  const raw = await blobs.readJson<{ mediaType?: string; manifests?: IndexEntry[]; config?: Descriptor; layers?: Descriptor[]; annotations?: Record<string, string> }>(desc.digest);
  const kind = raw.mediaType ?? desc.mediaType;
  if (Array.isArray(raw.manifests) && !Array.isArray(raw.layers)) {
    dockerType('index', { mediaType: kind, digest: desc.digest });
    refuseAttestations(raw.manifests);
    const entries: IndexEntry[] = [];
    for (const e of raw.manifests) entries.push({ ...(await toDockerMediaTypes(blobs, e, signal, depth + 1)), ...(e.platform ? { platform: e.platform } : {}) });
    const blob = await blobs.putBytes(dockerManifestListJson(entries));
    return { mediaType: MediaType.dockerManifestList, digest: blob.digest, size: blob.size };
  }
  if (!raw.config || !Array.isArray(raw.layers)) throw new BuildError('STORE_CORRUPT', `${desc.digest}: neither an image manifest nor an index`);
  dockerType('manifest', { mediaType: kind, digest: desc.digest });
  const blob = await blobs.putBytes(dockerManifestJson({ config: raw.config, layers: raw.layers, ...(raw.annotations ? { annotations: raw.annotations } : {}) }));
  return { mediaType: MediaType.dockerManifest, digest: blob.digest, size: blob.size };
}

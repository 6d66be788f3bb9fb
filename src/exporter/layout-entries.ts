import type { Descriptor } from '../oci/image.js';
import type { IndexDescriptor } from '../oci/image-layout.js';
import type { StoredImage } from '../oci/image-reader.js';
import { REF_NAME_ANNOTATION } from '../oci/media-types.js';
import { parseReference } from '../oci/reference.js';

/** containerd's (and docker 25+ `docker save`'s) annotation for the full image name. */
export const CONTAINERD_NAME_ANNOTATION = 'io.containerd.image.name';

/** Every blob an exported single-platform image needs: manifest, config, then layers. */
export function imageBlobs(img: StoredImage): Descriptor[] {
  return [img.manifestDescriptor, img.configDescriptor, ...img.layers];
}

/**
 * index.json entries for an exported layout, as BuildKit and docker save write them: per name,
 * `org.opencontainers.image.ref.name` = the tag only (what `skopeo oci:DIR:TAG` and
 * `umoci --image DIR:TAG` look up) and `io.containerd.image.name` = the full normalized name.
 * Names are parsed with parseReference (BuildError('INVALID_REFERENCE') when invalid). Two
 * names with the same tag yield one entry (the later name wins), since the tag is the key.
 * With no names, one unannotated entry.
 */
export function layoutIndexEntries(manifest: Descriptor, refNames: readonly string[]): IndexDescriptor[] {
  const base: Descriptor = { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.size };
  if (refNames.length === 0) return [base];
  const byTag = new Map<string, IndexDescriptor>();
  for (const n of refNames) {
    const ref = parseReference(n);
    const key = ref.tag ?? ref.toString();
    const annotations: Record<string, string> = { [CONTAINERD_NAME_ANNOTATION]: ref.toString() };
    if (ref.tag !== undefined) annotations[REF_NAME_ANNOTATION] = ref.tag;
    byTag.delete(key);
    byTag.set(key, { ...base, annotations });
  }
  return [...byTag.values()];
}

import type { Ctx } from '../ctx.js';
import type { ContentStore } from '../oci/content-store.js';
import type { Descriptor } from '../oci/image.js';
import { OCI_LAYOUT_CONTENT, type LayoutIndex } from '../oci/image-layout.js';
import { readImage } from '../oci/image-reader.js';
import { MediaType } from '../oci/media-types.js';
import { writeArchiveAtomic } from './archive-file.js';
import { imageBlobs, layoutIndexEntries } from './layout-entries.js';

/**
 * Writes the image as an OCI image layout in a tar file (`oci-layout`, `index.json`,
 * `blobs/sha256/…`), readable by `skopeo oci-archive:FILE[:TAG]`, podman/buildah and
 * containerd. Index entries as in {@link exportOciLayout}. Layers are streamed from the store;
 * the file appears atomically when complete.
 */
export async function exportOciArchive(blobs: ContentStore, manifest: Descriptor, destFile: string, refNames: readonly string[], ctx: Ctx): Promise<void> {
  const img = await readImage(blobs, manifest);
  const index: LayoutIndex = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: layoutIndexEntries(img.manifestDescriptor, refNames) };
  await writeArchiveAtomic(destFile, ctx, async (w) => {
    await w.file('oci-layout', OCI_LAYOUT_CONTENT);
    await w.file('index.json', JSON.stringify(index));
    await w.dir('blobs');
    await w.dir('blobs/sha256');
    const seen = new Set<string>();
    for (const d of imageBlobs(img)) {
      if (seen.has(d.digest)) continue;
      seen.add(d.digest);
      await w.blob(blobs, d);
    }
  });
}

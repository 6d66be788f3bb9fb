import type { Ctx } from '../ctx.js';
import type { ContentStore } from '../oci/content-store.js';
import type { Descriptor } from '../oci/image.js';
import { OCI_LAYOUT_CONTENT, type LayoutIndex } from '../oci/image-layout.js';
import { imageTreeBlobs } from '../oci/image-tree.js';
import { MediaType } from '../oci/media-types.js';
import { writeArchiveAtomic, type ArchiveWriter } from './archive-file.js';
import { layoutIndexEntries } from './layout-entries.js';

/**
 * Writes the image (or image index) as an OCI image layout in a tar file (`oci-layout`, `index.json`,
 * `blobs/sha256/…`), readable by `skopeo oci-archive:FILE[:TAG]`, podman/buildah and
 * containerd. Index entries as in {@link exportOciLayout}. Layers are streamed from the store;
 * the file appears atomically when complete.
 */
export async function exportOciArchive(blobs: ContentStore, manifest: Descriptor, destFile: string, refNames: readonly string[], ctx: Ctx): Promise<void> {
  const all = await imageTreeBlobs(blobs, manifest);
  await writeArchiveAtomic(destFile, ctx, (w) => writeLayoutInto(w, blobs, all, refNames));
}

/**
 * Fills an archive with an OCI layout: `oci-layout`, `index.json` (naming `all[0]`, the image
 * manifest or index), then `extraFiles` (docker's `manifest.json`), then every blob of `all`
 * once. Shared by the OCI and docker archives, which differ only by that extra file.
 */
export async function writeLayoutInto(
  w: ArchiveWriter,
  blobs: ContentStore,
  all: readonly Descriptor[],
  refNames: readonly string[],
  extraFiles: Readonly<Record<string, string>> = {},
): Promise<void> {
  const index: LayoutIndex = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: layoutIndexEntries(all[0]!, refNames) };
  await w.file('oci-layout', OCI_LAYOUT_CONTENT);
  await w.file('index.json', JSON.stringify(index));
  for (const [name, content] of Object.entries(extraFiles)) await w.file(name, content);
  await w.dir('blobs');
  await w.dir('blobs/sha256');
  const seen = new Set<string>();
  for (const d of all) {
    if (seen.has(d.digest)) continue;
    seen.add(d.digest);
    await w.blob(blobs, d);
  }
}

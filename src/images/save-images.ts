import type { Ctx } from '../ctx.js';
import { blobPath, writeArchiveAtomic } from '../exporter/archive-file.js';
import type { DockerArchiveManifestEntry } from '../exporter/docker-archive.js';
import { imageBlobs, layoutIndexEntries } from '../exporter/layout-entries.js';
import { OCI_LAYOUT_CONTENT, type ImageLayout, type IndexDescriptor, type LayoutIndex } from '../oci/image-layout.js';
import { readImage, type StoredImage } from '../oci/image-reader.js';
import { imageTreeBlobs } from '../oci/image-tree.js';
import type { Descriptor } from '../oci/image.js';
import { MediaType } from '../oci/media-types.js';
import { parseReference } from '../oci/reference.js';

/** What `tsbuild save` puts in one archive: each image once, with every name it was asked for. */
export interface SaveItem {
  readonly names: readonly string[];
  readonly descriptor: IndexDescriptor;
}

/**
 * Writes several images into one tar, streamed and atomic: `oci` is an OCI image layout
 * (skopeo `oci-archive:`), `docker` the same layout plus docker's `manifest.json` with one
 * entry per image (`docker load`, skopeo `docker-archive:`). Blobs shared by images are stored
 * once. Names are written as the single-image exporters write them.
 */
export async function saveImages(layout: ImageLayout, items: readonly SaveItem[], file: string, format: 'oci' | 'docker', ctx: Ctx): Promise<void> {
  // docker's format holds one platform per image (the host's from an index); OCI keeps an index whole.
  const images: { img: StoredImage; names: readonly string[]; blobs: readonly Descriptor[] }[] = [];
  for (const it of items) {
    const img = await readImage(layout.blobs, it.descriptor);
    images.push({ img, names: it.names, blobs: format === 'oci' ? await imageTreeBlobs(layout.blobs, it.descriptor) : imageBlobs(img) });
  }
  const index: LayoutIndex = {
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: images.flatMap(({ blobs, names }) => layoutIndexEntries(blobs[0]!, names)),
  };
  const dockerManifest: DockerArchiveManifestEntry[] = images.map(({ img, names }) => {
    const tags = names.map((n) => parseReference(n)).filter((r) => r.tag !== undefined).map((r) => r.familiar.split('@')[0]!);
    return { Config: blobPath(img.configDescriptor), RepoTags: tags.length ? [...new Set(tags)] : null, Layers: img.layers.map(blobPath) };
  });
  await writeArchiveAtomic(file, ctx, async (w) => {
    await w.file('oci-layout', OCI_LAYOUT_CONTENT);
    await w.file('index.json', JSON.stringify(index));
    if (format === 'docker') await w.file('manifest.json', JSON.stringify(dockerManifest));
    await w.dir('blobs');
    await w.dir('blobs/sha256');
    const seen = new Set<string>();
    for (const { blobs } of images) {
      for (const d of blobs) {
        if (seen.has(d.digest)) continue;
        seen.add(d.digest);
        await w.blob(layout.blobs, d);
      }
    }
  });
}

import type { Ctx } from '../ctx.js';
import type { ContentStore } from '../oci/content-store.js';
import type { Descriptor } from '../oci/image.js';
import { readImage } from '../oci/image-reader.js';
import { parseReference } from '../oci/reference.js';
import { blobPath, writeArchiveAtomic } from './archive-file.js';
import { writeLayoutInto } from './oci-archive.js';
import { imageBlobs } from './layout-entries.js';

/** One image in a `docker save` manifest.json. */
export interface DockerArchiveManifestEntry {
  Config: string;
  RepoTags: string[] | null;
  Layers: string[];
}

/**
 * Writes a `docker load` tarball in the shape docker 25+ `docker save` produces: an OCI layout
 * (`oci-layout`, `index.json`, `blobs/sha256/…`) plus the legacy `manifest.json`
 * `[{Config, RepoTags, Layers}]` whose paths point into `blobs/sha256/`. Layers stay as stored
 * (gzip): `docker load` and skopeo's docker-archive reader decompress them and check the
 * config's diff_ids. `repoTags` are given in any form and written familiar (`hello:latest`);
 * digest-only references can't be tags and are left out of RepoTags. Streamed; atomic.
 */
export async function exportDockerArchive(blobs: ContentStore, manifest: Descriptor, destFile: string, repoTags: readonly string[], ctx: Ctx): Promise<void> {
  const img = await readImage(blobs, manifest);
  const tags = repoTags.map((t) => parseReference(t)).filter((r) => r.tag !== undefined).map((r) => `${r.familiar.split('@')[0]}`);
  const entry: DockerArchiveManifestEntry = {
    Config: blobPath(img.configDescriptor),
    RepoTags: tags.length > 0 ? [...new Set(tags)] : null,
    Layers: img.layers.map(blobPath),
  };
  await writeArchiveAtomic(destFile, ctx, (w) => writeLayoutInto(w, blobs, imageBlobs(img), repoTags, { 'manifest.json': JSON.stringify([entry]) }));
}

import { rmdir } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import type { Ctx } from '../ctx.js';
import { withByteProgress } from '../events.js';
import { BuildError } from '../errors.js';
import type { ContentStore } from '../oci/content-store.js';
import type { Descriptor } from '../oci/image.js';
import { ImageLayout } from '../oci/image-layout.js';
import { imageTreeBlobs } from '../oci/image-tree.js';
import { REF_NAME_ANNOTATION } from '../oci/media-types.js';
import { join } from 'node:path';
import { layoutIndexEntries } from './layout-entries.js';

/**
 * Writes the image `manifest` (or image index, with every platform's image; from `blobs`) into the OCI image layout directory `destDir`,
 * creating it or merging into an existing layout: existing blobs and entries stay, and an entry
 * with the same `org.opencontainers.image.ref.name` (the tag of each of `refNames`, see
 * {@link layoutIndexEntries}) is replaced. Blobs are copied from the store and verified. index.json is updated last, under the
 * layout's lock, so an interrupted export never leaves an entry pointing at missing blobs.
 */
export async function exportOciLayout(blobs: ContentStore, manifest: Descriptor, destDir: string, refNames: readonly string[], ctx: Ctx): Promise<void> {
  const all = await imageTreeBlobs(blobs, manifest);
  const entries = layoutIndexEntries(all[0]!, refNames);
  const tmpDir = join(destDir, '.tsbuild-tmp');
  const dest = await ImageLayout.open(destDir, { create: true, tmpDir });
  try {
    for (const d of all) {
      ctx.signal.throwIfAborted();
      await copyBlob(blobs, dest.blobs, d, ctx);
    }
    ctx.signal.throwIfAborted();
    await dest.update((idx) => {
      let manifests = idx.manifests;
      for (const e of entries) {
        const tag = e.annotations?.[REF_NAME_ANNOTATION];
        manifests = manifests.filter((m) =>
          tag !== undefined ? m.annotations?.[REF_NAME_ANNOTATION] !== tag : !(m.digest === e.digest && m.annotations?.[REF_NAME_ANNOTATION] === undefined),
        );
        manifests = [...manifests, e];
      }
      return { ...idx, manifests };
    });
  } finally {
    // Leave a clean layout: the temp dir only held in-flight copies.
    await rmdir(tmpDir).catch(() => undefined);
  }
}

/**
 * Puts blob `d` into `to`, verified: nothing if present, else a copy. Never a hard link: an
 * exported layout is the user's to edit or delete, and a shared inode would let that corrupt
 * the store's blob.
 */
export async function copyBlob(from: ContentStore, to: ContentStore, d: Descriptor, ctx: Ctx): Promise<void> {
  if (await to.has(d.digest)) return;
  if (!(await from.has(d.digest))) throw new BuildError('STORE_CORRUPT', `blob ${d.digest} is missing from the store at ${from.layoutDir}`);
  const w = to.createWriter({ digest: d.digest, size: d.size });
  try {
    await pipeline(withByteProgress(from.openRead(d.digest), ctx.events, `export ${d.digest}`, d.size), w.stream, { signal: ctx.signal });
    await w.commit();
  } catch (e) {
    await w.abort();
    throw e;
  }
}

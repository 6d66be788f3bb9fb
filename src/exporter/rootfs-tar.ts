import type { Ctx } from '../ctx.js';
import type { Descriptor } from '../oci/image.js';
import { readImage } from '../oci/image-reader.js';
import { filesystemImages } from '../oci/image-tree.js';
import { ensureUnpacked } from '../solver/ops/image.js';
import type { Worker } from '../solver/worker.js';
import { writeArchiveAtomic, type ArchiveWriter } from './archive-file.js';
import type { AttestationFile } from './local-provenance.js';

/**
 * BuildKit's `type=tar`: the image's root filesystem as one tar archive (to a file, atomically,
 * or `-` for standard output). The layers are mounted read-only through overlayfs, so the
 * archive is the merged view (no whiteouts) and nothing is copied to disk first. An image index
 * puts each platform's files under `os_arch[_variant]/`, as BuildKit does. `mtime` (seconds),
 * when given, is every entry's time.
 */
export async function exportRootfsTar(worker: Worker, manifest: Descriptor, dest: string, ctx: Ctx, mtime?: number, split?: boolean, extra: readonly AttestationFile[] = []): Promise<void> {
  const images = await filesystemImages(worker.blobs, manifest, split);
  await writeArchiveAtomic(dest, ctx, async (w) => {
    for (const { descriptor, dir } of images) {
      if (dir) await w.dir(dir);
      await addRootfs(worker, descriptor, w, dir ? `${dir}/` : '', ctx, mtime);
    }
    // Attestations last: an extractor lets them replace an image file of the same name.
    for (const f of extra) await w.file(f.path, f.data);
  });
}

async function addRootfs(worker: Worker, manifest: Descriptor, w: ArchiveWriter, prefix: string, ctx: Ctx, mtime: number | undefined): Promise<void> {
  const img = await readImage(worker.blobs, manifest);
  const diffIds = img.config.rootfs.diff_ids;
  for (let i = 0; i < img.layers.length; i++) await ensureUnpacked(worker, img.layers[i]!, diffIds[i]!, ctx);
  const mounted = await worker.mount(diffIds, { readonly: true }, ctx);
  try {
    await w.tree(mounted.merged, prefix, mtime);
  } finally {
    await mounted.release();
  }
}

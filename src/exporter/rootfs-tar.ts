import type { Ctx } from '../ctx.js';
import { BuildError } from '../errors.js';
import type { Descriptor } from '../oci/image.js';
import { readImage } from '../oci/image-reader.js';
import { indexEntries } from '../oci/image-tree.js';
import { ensureUnpacked } from '../solver/ops/image.js';
import type { Worker } from '../solver/worker.js';
import { writeArchiveAtomic } from './archive-file.js';

/**
 * BuildKit's `type=tar`: the image's root filesystem as one tar archive (to a file, atomically,
 * or `-` for standard output). The layers are mounted read-only through overlayfs, so the
 * archive is the merged view (no whiteouts) and nothing is copied to disk first.
 */
export async function exportRootfsTar(worker: Worker, manifest: Descriptor, dest: string, ctx: Ctx): Promise<void> {
  if (await indexEntries(worker.blobs, manifest)) {
    throw new BuildError('USAGE', '--output type=tar holds one platform\'s files; for several use type=local (a directory per platform) or type=oci');
  }
  const img = await readImage(worker.blobs, manifest);
  const diffIds = img.config.rootfs.diff_ids;
  for (let i = 0; i < img.layers.length; i++) await ensureUnpacked(worker, img.layers[i]!, diffIds[i]!, ctx);
  const mounted = await worker.mount(diffIds, { readonly: true }, ctx);
  try {
    await writeArchiveAtomic(dest, ctx, (w) => w.tree(mounted.merged));
  } finally {
    await mounted.release();
  }
}

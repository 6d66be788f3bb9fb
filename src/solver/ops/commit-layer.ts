import { rm } from 'node:fs/promises';
import type { Ctx } from '../../ctx.js';
import { MediaType } from '../../oci/media-types.js';
import { createLayerBlob, intoContentStore } from '../../oci/layer/blob.js';
import type { RootfsResult } from '../graph.js';
import type { Worker } from '../worker.js';

/**
 * Turns a finished upperdir into the next layer of `base`: the uncompressed tar goes to the
 * content store (digested while streaming; outputs compress it when they need to), the directory itself becomes the layer's overlay dir (it is
 * already in overlay format, so nothing is unpacked again). An upperdir with no changes adds no
 * layer unless `keepEmpty`: BuildKit keeps the (empty) layer of a RUN or file op that changed
 * nothing (its TestExportedHistory counts it in diff_ids, and history shows it as a layer).
 */
export async function commitUpperAsLayer(worker: Worker, upper: string, base: RootfsResult, ctx: Ctx, opts: { keepEmpty?: boolean } = {}): Promise<RootfsResult> {
  try {
    const blob = await createLayerBlob(
      upper,
      intoContentStore(worker.blobs, ctx.signal),
      { signal: ctx.signal, opaqueXattr: worker.layers.opaqueXattr },
    );
    if (blob.empty && !opts.keepEmpty) {
      await rm(upper, { recursive: true, force: true });
      return base;
    }
    await worker.layers.commit(upper, blob.diffId, { blob: { mediaType: MediaType.ociLayer, digest: blob.digest, size: blob.size } });
    return { kind: 'rootfs', layers: [...base.layers, { diffId: blob.diffId }] };
  } catch (e) {
    await rm(upper, { recursive: true, force: true });
    throw e;
  }
}

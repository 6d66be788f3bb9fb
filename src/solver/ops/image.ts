import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Ctx } from '../../ctx.js';
import { BuildError, isAbortError } from '../../errors.js';
import { Digester, type Digest } from '../../oci/digest.js';
import type { Descriptor } from '../../oci/image.js';
import { readImage } from '../../oci/image-reader.js';
import { MediaType } from '../../oci/media-types.js';
import { decompressStream } from '../../oci/decompress.js';
import { applyLayer } from '../../oci/layer/apply.js';
import { TarFormatError } from '../../oci/tar/tar-entry.js';
import { DEFAULT_EXPANSION_LIMITS, ExpansionGuard } from '../../oci/layer/expansion-guard.js';
import type { ImageOp, RootfsResult } from '../graph.js';
import type { OpHandler } from '../scheduler.js';
import type { Worker } from '../worker.js';

/** FROM <image>: the image's layers, each unpacked once into overlay format and shared by every build. */
export function imageHandler(worker: Worker): OpHandler<ImageOp> {
  return {
    async run(op, _inputs, _vertex, ctx) {
      // Untagged images (an oci-layout:// named context) are found by their pinned digest.
      const desc = (await worker.images.resolve(op.ref)) ?? (op.digest && (await worker.blobs.has(op.digest)) ? { mediaType: MediaType.ociManifest, digest: op.digest, size: (await worker.blobs.stat(op.digest))!.size } : undefined);
      if (!desc) {
        throw new BuildError('IMAGE_NOT_FOUND', `image ${op.ref} is not in the local store`, {
          hint: 'build or load it first (tsbuild build -t NAME, tsbuild load -i FILE)',
        });
      }
      const image = await readImage(worker.blobs, desc, op.platform);
      const diffIds = image.config.rootfs.diff_ids;
      for (let i = 0; i < image.layers.length; i++) await ensureUnpacked(worker, image.layers[i]!, diffIds[i]!, ctx);
      const result: RootfsResult = { kind: 'rootfs', layers: diffIds.map((diffId) => ({ diffId })) };
      return result;
    },
  };
}

/**
 * Unpacks a layer blob into the layer store unless it is already there. The uncompressed stream
 * is hashed on the way, and a layer whose content does not match its diffID is never committed.
 */
export async function ensureUnpacked(worker: Worker, blob: Descriptor, diffId: Digest, ctx: Ctx): Promise<void> {
  if (await worker.layers.has(diffId)) return;
  const dir = await mkdtemp(join(worker.dirs.tmp, 'unpack-'));
  try {
    const digester = new Digester();
    const hashing = digester.passThrough();
    const guard = new ExpansionGuard(worker.expansionLimits ?? DEFAULT_EXPANSION_LIMITS, `layer ${blob.digest}`, blob.size);
    // pipeline, not pipe: a truncated, corrupt or oversized stream must fail the unpack, not
    // escape as an unhandled 'error' event (it surfaces on `tar`, which pipeline destroys with it).
    const tar = hashing;
    pipeline(guard.wrap(await decompressStream(worker.blobs.openRead(blob.digest), ctx.signal)), hashing).catch(() => undefined);
    try {
      await applyLayer(tar, dir, { mode: 'overlay', opaqueXattr: worker.layers.opaqueXattr, onEntry: guard.countEntry }, ctx.signal);
      // The tar's trailing zero blocks count in the diffID too.
      for await (const _ of tar) void _;
    } catch (e) {
      tar.destroy(); // and, through the pipeline, the decompressor and the blob's file
      if (e instanceof BuildError || isAbortError(e) || ctx.signal.aborted) throw e;
      if (e instanceof TarFormatError) throw new BuildError('STORE_CORRUPT', `layer ${blob.digest}: ${e.message}`, { cause: e, hint: 'the image is damaged or hostile: remove it (tsbuild rmi)' });
      throw new BuildError('STORE_CORRUPT', `layer ${blob.digest}: cannot be unpacked: ${(e as Error).message} (the blob is truncated or not a valid compressed tar)`, {
        cause: e,
        hint: 'the image is damaged where it came from; remove it with `tsbuild rmi` and pull it again, or ask its publisher',
      });
    }
    const got = digester.digest();
    if (got !== diffId) throw new BuildError('STORE_CORRUPT', `layer ${blob.digest} unpacks to ${got}, but the image config says ${diffId}`);
    await worker.layers.commit(dir, diffId, { blob });
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}

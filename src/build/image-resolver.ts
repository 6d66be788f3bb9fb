import type { Ctx } from '../ctx.js';
import { BuildError } from '../errors.js';
import type { ImageResolver } from '../frontend/compile.js';
import type { Platform } from '../oci/image.js';
import { readImage } from '../oci/image-reader.js';
import { parseReference } from '../oci/reference.js';
import type { Worker } from '../solver/worker.js';

/**
 * FROM resolution against the local store (an OCI layout whose tags are full normalized names).
 * Pulling from registries comes with the registry client.
 */
export function storeImageResolver(worker: Worker): ImageResolver {
  return {
    async resolve(ref: string, _platform: Platform, _ctx: Ctx) {
      const name = parseReference(ref).toString();
      const desc = await worker.images.resolve(name);
      if (!desc) {
        throw new BuildError('IMAGE_NOT_FOUND', `image ${ref} (${name}) not found in the local store`, {
          hint: 'build it first with `tsbuild build -t ' + ref + ' …` or load it with `tsbuild load -i FILE`; pulling from registries is not supported yet',
        });
      }
      const image = await readImage(worker.blobs, desc);
      return { ref: name, digest: desc.digest, config: image.config };
    },
  };
}

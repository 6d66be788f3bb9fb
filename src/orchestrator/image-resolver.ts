import type { Ctx } from '../ctx.js';
import { BuildError, isAbortError } from '../errors.js';
import type { ImageResolver } from '../frontend/compile.js';
import type { Platform } from '../oci/image.js';
import { readImage } from '../oci/image-reader.js';
import { formatPlatform } from '../oci/platform.js';
import { parseReference } from '../oci/reference.js';
import { pullImage } from '../remote/pull.js';
import type { RegistryClient } from '../remote/registry-client.js';
import type { Worker } from '../solver/worker.js';

export interface ImageResolverOptions {
  /** Pulls images missing from the local store; without it, FROM only sees the store. */
  readonly registry?: RegistryClient;
  /** `--pull`: ask the registry even when the store has the image (and fail when it can't answer). */
  readonly pull?: boolean;
}

/**
 * FROM resolution: the local store (an OCI layout whose tags are full normalized names) first,
 * then the registry, whose image is pulled into the store and tagged with the normalized name
 * (so the image op handler finds it there). With `pull`, the registry is always asked.
 */
export function storeImageResolver(worker: Worker, opts: ImageResolverOptions = {}): ImageResolver {
  return {
    async resolve(ref: string, platform: Platform, ctx: Ctx) {
      const parsed = parseReference(ref);
      const name = parsed.toString();
      let desc = opts.pull ? undefined : await worker.images.resolve(name);
      if (!desc && opts.registry) {
        try {
          const pulled = await pullImage(opts.registry, parsed, worker.blobs, platform, ctx);
          await worker.images.tag(name, pulled.manifest);
          desc = pulled.manifest;
        } catch (e) {
          if (isAbortError(e) || ctx.signal.aborted) throw e;
          // Say both what was looked for and why the registry could not supply it.
          const code = e instanceof BuildError && e.code !== 'REGISTRY' ? e.code : 'IMAGE_NOT_FOUND';
          throw new BuildError(code, `image ${ref} (${name}) not found${opts.pull ? '' : ' in the local store'} and could not be pulled: ${(e as Error).message}`, {
            cause: e,
            hint: e instanceof BuildError && e.hint ? e.hint : `build it first with \`tsbuild build -t ${ref} …\` or load it with \`tsbuild load -i FILE\``,
          });
        }
      }
      if (!desc) {
        throw new BuildError('IMAGE_NOT_FOUND', `image ${ref} (${name}) not found in the local store`, {
          hint: 'build it first with `tsbuild build -t ' + ref + ' …`, load it with `tsbuild load -i FILE`, or pull it with `tsbuild pull ' + ref + '`',
        });
      }
      const image = await readImage(worker.blobs, desc, platform);
      // A single-platform image is taken as it is by readImage; building on it for another
      // platform would silently produce an image whose config lies about its binaries.
      const { os, architecture } = image.config;
      if (os && architecture && (os !== platform.os || architecture !== platform.architecture)) {
        throw new BuildError('IMAGE_NOT_FOUND', `image ${ref} (${name}) is ${os}/${architecture}, not ${formatPlatform(platform)}`, {
          hint: `build or pull a ${formatPlatform(platform)} image under that name, or use FROM --platform=$BUILDPLATFORM for steps that only need to run here`,
        });
      }
      return { ref: name, digest: desc.digest, config: image.config };
    },
  };
}

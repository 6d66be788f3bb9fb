import type { ImageResolver } from '../../src/frontend/compile.js';
import type { Digest } from '../../src/oci/digest.js';

/** The compile's injected seam for base images, for unit tests: every name is one fixed amd64 config, no store. */
export const fixedImageResolver: ImageResolver = {
  async resolve(ref) {
    return {
      ref: `docker.io/library/${ref}:latest`,
      digest: `sha256:${'a'.repeat(64)}` as Digest,
      config: { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, config: { Env: ['PATH=/bin'] } },
    };
  },
};

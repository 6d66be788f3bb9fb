import { BuildError } from '../errors.js';
import { isDigest } from '../oci/digest.js';
import type { Descriptor, Platform } from '../oci/image.js';
import { formatPlatform, matchPlatform } from '../oci/platform.js';

/** An index entry: a descriptor that may name its platform. */
export type PlatformDescriptor = Descriptor & { platform?: Platform };

/**
 * The entry of an index (OCI) or manifest list (Docker) for `platform`, as containerd picks:
 * os and architecture must match, and the variant too when both name one; an exact variant
 * match wins. No match → BuildError('IMAGE_NOT_FOUND') listing what the index has.
 */
export function selectPlatform(entries: readonly PlatformDescriptor[], platform: Platform, what: string): PlatformDescriptor {
  const chosen = matchPlatform(entries, platform);
  if (!chosen) {
    const have = entries.map((e) => (e.platform ? formatPlatform(e.platform) : 'unknown')).join(', ');
    throw new BuildError('IMAGE_NOT_FOUND', `${what} has no image for platform ${formatPlatform(platform)} (it has: ${have || 'none'})`, {
      hint: 'choose one of its platforms with --platform',
    });
  }
  if (!isDigest(chosen.digest)) throw new BuildError('REGISTRY', `${what}: index entry has invalid digest ${JSON.stringify(chosen.digest)}`);
  return chosen;
}

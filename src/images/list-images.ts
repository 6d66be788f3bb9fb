import { BuildError } from '../errors.js';
import type { Digest } from '../oci/digest.js';
import type { ImageLayout, IndexDescriptor } from '../oci/image-layout.js';
import { readImage, type StoredImage } from '../oci/image-reader.js';
import { parseReference } from '../oci/reference.js';

/** One tagged image of the local store, as `tsbuild images` shows it. */
export interface ImageSummary {
  /** Normalized name as stored: `docker.io/library/busybox:latest`. */
  readonly name: string;
  /** Short repository (`busybox`, `localhost:5000/app`) and tag, as docker prints them. */
  readonly repository: string;
  readonly tag: string;
  /** Image ID: the config digest. */
  readonly id: Digest;
  /** Manifest digest. */
  readonly digest: Digest;
  /** `created` of the config (RFC 3339), when set. */
  readonly created?: string;
  /** Bytes in the store: manifest + config + compressed layers. */
  readonly size: number;
}

/** Every tagged image, sorted by name. Unreadable entries are a BuildError('STORE_CORRUPT'). */
export async function listImages(layout: ImageLayout): Promise<ImageSummary[]> {
  const out: ImageSummary[] = [];
  for (const { name, descriptor } of await layout.list()) {
    const img = await readImage(layout.blobs, descriptor, undefined, { anyPlatform: true });
    const ref = safeParse(name);
    const familiar = ref?.familiar ?? name;
    const at = ref?.tag !== undefined ? familiar.lastIndexOf(':' + ref.tag) : -1;
    out.push({
      name,
      repository: at > 0 ? familiar.slice(0, at) : familiar,
      tag: ref?.tag ?? '<none>',
      id: img.configDescriptor.digest as Digest,
      digest: descriptor.digest as Digest,
      ...(img.config.created ? { created: img.config.created } : {}),
      size: imageSize(img),
    });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Manifest + config + layers, in bytes. */
export function imageSize(img: StoredImage): number {
  return img.manifestDescriptor.size + img.configDescriptor.size + img.layers.reduce((n, l) => n + l.size, 0);
}

/**
 * The store entry `nameOrId` names: a name in any form (`busybox`, `busybox:latest`,
 * `docker.io/library/busybox:latest`), or an image ID / manifest digest, whole or a prefix of
 * at least 4 hex digits. BuildError('IMAGE_NOT_FOUND') when none; 'USAGE' when a prefix is ambiguous.
 */
export async function findImage(layout: ImageLayout, nameOrId: string): Promise<{ name?: string; descriptor: IndexDescriptor }> {
  const entries = await layout.list();
  const ref = safeParse(nameOrId);
  if (ref) {
    const hit = entries.find((e) => e.name === ref.toString());
    if (hit) return hit;
  }
  const hex = nameOrId.replace(/^sha256:/, '');
  if (/^[0-9a-f]{4,64}$/.test(hex)) {
    const matches = new Map<string, { name?: string; descriptor: IndexDescriptor }>();
    for (const e of entries) {
      const img = await readImage(layout.blobs, e.descriptor, undefined, { anyPlatform: true });
      for (const d of [img.configDescriptor.digest, img.manifestDescriptor.digest]) {
        if (d.slice(7).startsWith(hex)) matches.set(e.descriptor.digest, matches.get(e.descriptor.digest) ?? e);
      }
    }
    if (matches.size === 1) return [...matches.values()][0]!;
    if (matches.size > 1) throw new BuildError('USAGE', `${nameOrId} matches ${matches.size} images; give more digits or a name`);
  }
  throw new BuildError('IMAGE_NOT_FOUND', `image ${nameOrId} is not in the local store`, { hint: 'list images with `tsbuild images`' });
}

function safeParse(name: string) {
  try {
    return parseReference(name);
  } catch {
    return undefined;
  }
}

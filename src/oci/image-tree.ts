import type { ContentStore } from './content-store.js';
import type { Descriptor } from './image.js';
import type { IndexDescriptor } from './image-layout.js';
import { readImage } from './image-reader.js';
import { MediaType } from './media-types.js';
import { isAttestation } from './attestation.js';
import { formatPlatform } from './platform.js';

const INDEX_TYPES: ReadonlySet<string> = new Set([MediaType.ociIndex, MediaType.dockerManifestList]);

/** The entries of `desc` when it is an image index (or Docker manifest list); undefined for an image manifest. */
export async function indexEntries(blobs: ContentStore, desc: Descriptor): Promise<IndexDescriptor[] | undefined> {
  const raw = await blobs.readJson<{ mediaType?: string; manifests?: IndexDescriptor[]; layers?: unknown }>(desc.digest);
  const kind = raw.mediaType ?? desc.mediaType;
  return INDEX_TYPES.has(kind) || (Array.isArray(raw.manifests) && !Array.isArray(raw.layers)) ? (raw.manifests ?? []) : undefined;
}

/**
 * Every blob an image or an image index needs, each once: an index, then per manifest the
 * manifest, its config and its layers. What an exported layout or archive must hold.
 */
export async function imageTreeBlobs(blobs: ContentStore, desc: Descriptor): Promise<Descriptor[]> {
  const out = new Map<string, Descriptor>();
  const visit = async (d: Descriptor, depth: number): Promise<void> => {
    const entries = depth < 4 ? await indexEntries(blobs, d) : undefined;
    if (entries) {
      out.set(d.digest, { mediaType: d.mediaType, digest: d.digest, size: d.size });
      for (const e of entries) await visit(e, depth + 1);
      return;
    }
    const img = await readImage(blobs, d);
    for (const b of [img.manifestDescriptor, img.configDescriptor, ...img.layers]) if (!out.has(b.digest)) out.set(b.digest, b);
  };
  await visit(desc, 0);
  return [...out.values()];
}

/**
 * The images whose files an exporter writes (`type=local`, `type=tar`): the image itself, or
 * each image of an index with the directory BuildKit names for its platform (`linux_arm_v7`).
 * Attestations describe images and have no files; an index left with one image is that image
 * at the top (`dir` ''). BuildKit's `platform-split` overrides that: true puts even one image in
 * its platform's directory (read from its config), false puts every image at the top.
 */
export async function filesystemImages(blobs: ContentStore, desc: Descriptor, split?: boolean): Promise<{ readonly descriptor: Descriptor; readonly dir: string; readonly platform: string }[]> {
  const entries: IndexDescriptor[] = (await indexEntries(blobs, desc))?.filter((e) => !isAttestation(e)) ?? [desc];
  const out = [];
  for (const [i, e] of entries.entries()) {
    const p = e.platform ?? (await readImage(blobs, e, undefined, { anyPlatform: true })).config;
    const platform = p.os && p.architecture ? formatPlatform({ os: p.os, architecture: p.architecture, ...(p.variant ? { variant: p.variant } : {}) }).replaceAll('/', '_') : `image-${i}`;
    out.push({ descriptor: e, platform, dir: (split ?? entries.length > 1) ? platform : '' });
  }
  return out;
}

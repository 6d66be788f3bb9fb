import { createReadStream } from 'node:fs';
import pLimit from 'p-limit';
import type { Ctx } from '../ctx.js';
import type { ContentStore } from '../oci/content-store.js';
import type { Digest } from '../oci/digest.js';
import type { Descriptor } from '../oci/image.js';
import { MediaType } from '../oci/media-types.js';
import { uploadBlob } from './blob-upload.js';
import type { RegistryClient } from './registry-client.js';
import { RegistryError } from './registry-error.js';

export interface PushOptions {
  /**
   * Other repositories of the destination registry that may hold the blobs (where the image
   * was pulled from, or pushed to before): each missing blob is first offered as a
   * cross-repository mount from these, in order.
   */
  readonly mountFrom?: readonly string[];
}

export interface PushResult {
  /** The pushed manifest (or index): the same bytes as in the store, so the same digest. */
  readonly descriptor: Descriptor;
  /** Blobs uploaded, mounted, and skipped because the registry had them. */
  readonly uploaded: number;
  readonly mounted: number;
  readonly skipped: number;
}

const INDEX_TYPES: ReadonlySet<string> = new Set([MediaType.ociIndex, MediaType.dockerManifestList]);

/**
 * Pushes the image `manifest` (an image manifest or an index whose manifests are all in the
 * store) from `store` to `dest` under `tag` (or by digest when `tag` is undefined). Blobs go
 * first, in parallel: a HEAD skips those the registry has, a mount is tried next, then a
 * chunked upload; manifests go last, children before their index, with their own media type.
 */
export async function pushImage(client: RegistryClient, store: ContentStore, manifest: Descriptor, dest: { domain: string; path: string }, tag: string | undefined, opts: PushOptions, ctx: Ctx): Promise<PushResult> {
  const repo = client.repository(dest);
  const counts = { uploaded: 0, mounted: 0, skipped: 0 };
  const limit = pLimit(Math.max(1, client.parallelism));
  const mountFrom = (opts.mountFrom ?? []).filter((r) => r !== dest.path).slice(0, 3);
  await pushManifest(manifest, tag);
  return { descriptor: { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.size }, ...counts };

  async function pushManifest(desc: Descriptor, ref: string | undefined): Promise<void> {
    ctx.signal.throwIfAborted();
    const bytes = await store.readBytes(desc.digest);
    const parsed = JSON.parse(bytes.toString('utf8')) as { mediaType?: string; manifests?: Descriptor[]; config?: Descriptor; layers?: Descriptor[] };
    const mediaType = parsed.mediaType ?? desc.mediaType;
    if (INDEX_TYPES.has(mediaType)) {
      for (const child of parsed.manifests ?? []) await pushManifest(child, undefined);
    } else {
      const blobs = [parsed.config!, ...(parsed.layers ?? [])];
      // Deduplicate: an image may list the same layer twice.
      const unique = [...new Map(blobs.map((b) => [b.digest, b])).values()];
      await Promise.all(unique.map((b) => limit(() => pushBlob(b))));
    }
    await repo.putManifest(ref ?? desc.digest, bytes, mediaType, ctx.signal);
  }

  async function pushBlob(blob: Descriptor): Promise<void> {
    const has = await repo.statBlob(blob.digest, ctx.signal, [`repository:${dest.path}:pull,push`]);
    if (has === blob.size) {
      counts.skipped++;
      return;
    }
    let location: string | undefined;
    for (const from of mountFrom) {
      const r = await repo.startUpload(ctx.signal, { digest: blob.digest, from });
      if (r.mounted) {
        counts.mounted++;
        return;
      }
      location = r.location;
      break; // the registry opened an upload session instead: use it
    }
    const stat = await store.stat(blob.digest);
    if (!stat || stat.size !== blob.size) {
      throw new RegistryError('REGISTRY', `push ${dest.domain}/${dest.path}: blob ${blob.digest} is ${stat ? `${stat.size} bytes in the local store, not ${blob.size}` : 'missing from the local store'}`, {
        registry: dest.domain,
        repository: dest.path,
      });
    }
    await uploadBlob(repo, { digest: blob.digest as Digest, size: blob.size }, (start, end) => createReadStream(store.path(blob.digest), { start, end }), location, client.upload, ctx);
    counts.uploaded++;
  }
}

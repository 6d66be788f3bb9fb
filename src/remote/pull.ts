import { pipeline } from 'node:stream/promises';
import pLimit from 'p-limit';
import { withByteProgress } from '../events.js';
import type { Ctx } from '../ctx.js';
import { formatBytes } from '../byte-size.js';
import { BuildError } from '../errors.js';
import { BODY_LIMITS } from './bounded-body.js';
import { capBytes } from '../byte-cap.js';
import type { ContentStore } from '../oci/content-store.js';
import { isDigest, type Digest } from '../oci/digest.js';
import type { Descriptor, Platform } from '../oci/image.js';
import { MediaType } from '../oci/media-types.js';
import type { Reference } from '../oci/reference.js';
import { selectPlatform, type PlatformDescriptor } from './platform-select.js';
import type { RegistryClient } from './registry-client.js';
import { RegistryError } from './registry-error.js';
import type { FetchedManifest, Repository } from './repository.js';

/** What a pull stored: the single-platform manifest (blobs all present) and, if there was one, the index it came from. */
export interface PulledImage {
  /** Descriptor of the image manifest, with `platform` when it was chosen from an index. */
  readonly manifest: PlatformDescriptor;
  readonly config: Descriptor;
  /** Digest of the index or manifest list the reference resolved to, when it was one. */
  readonly indexDigest?: Digest;
  /** How many blobs were downloaded (the rest were already in the store). */
  readonly downloaded: number;
}

const INDEX_TYPES: ReadonlySet<string> = new Set([MediaType.ociIndex, MediaType.dockerManifestList]);

/**
 * Pulls `ref` (tag or digest) for `platform` into `store`: resolves an index to the platform's
 * manifest, downloads config and layers in parallel (skipping blobs already present), each
 * streamed through a writer that verifies digest and size before the blob becomes visible,
 * and stores the manifest last, so a stored manifest always has all its blobs. Tries the
 * registry's mirrors first. Does not tag: the caller names the result.
 */
export async function pullImage(client: RegistryClient, ref: Reference, store: ContentStore, platform: Platform, ctx: Ctx): Promise<PulledImage> {
  const sources = client.pullSources(ref);
  let lastErr: unknown;
  for (const [i, repo] of sources.entries()) {
    try {
      return await pullFrom(repo, ref, store, platform, client.parallelism, ctx);
    } catch (e) {
      // A mirror that fails is skipped; the registry's own error is the one reported.
      if (i === sources.length - 1 || ctx.signal.aborted) throw e;
      lastErr = e;
    }
  }
  throw lastErr;
}

async function pullFrom(repo: Repository, ref: Reference, store: ContentStore, platform: Platform, parallelism: number, ctx: Ctx): Promise<PulledImage> {
  const name = `${repo.host.registry}/${repo.path}`;
  let top = await repo.getManifest(ref.digest ?? ref.tag ?? 'latest', ctx.signal);
  let manifest: FetchedManifest = top;
  let chosen: PlatformDescriptor = { mediaType: top.mediaType, digest: top.digest, size: top.bytes.length };
  let indexDigest: Digest | undefined;
  if (INDEX_TYPES.has(top.mediaType)) {
    indexDigest = top.digest;
    const idx = parseJson<{ manifests?: PlatformDescriptor[] }>(top.bytes, name, top.digest);
    const entry = selectPlatform(idx.manifests ?? [], platform, `image ${ref.toString()} (index ${top.digest})`);
    manifest = await repo.getManifest(entry.digest, ctx.signal);
    if (manifest.bytes.length !== entry.size) {
      throw new RegistryError('REGISTRY', `pull ${ref.toString()}: manifest ${entry.digest} is ${manifest.bytes.length} bytes, the index says ${entry.size}`, { registry: repo.host.registry, repository: repo.path });
    }
    if (INDEX_TYPES.has(manifest.mediaType)) throw new RegistryError('REGISTRY_UNSUPPORTED', `pull ${ref.toString()}: nested indexes are not supported`, { registry: repo.host.registry, repository: repo.path });
    chosen = { mediaType: manifest.mediaType, digest: entry.digest, size: entry.size, ...(entry.platform ? { platform: entry.platform } : {}) };
    top = manifest;
  }
  const m = parseJson<{ config?: Descriptor; layers?: Descriptor[] }>(manifest.bytes, name, manifest.digest);
  if (!m.config || !isBlobDescriptor(m.config) || !Array.isArray(m.layers) || !m.layers.every(isBlobDescriptor)) {
    throw new RegistryError('REGISTRY', `pull ${ref.toString()}: manifest ${manifest.digest} from ${name} is malformed (config or layers missing or invalid)`, { registry: repo.host.registry, repository: repo.path });
  }
  // The config is read into memory later: refuse an absurd one before downloading it.
  if (m.config.size > BODY_LIMITS.config) {
    throw new RegistryError('REGISTRY', `pull ${ref.toString()}: the image config of ${name} is ${formatBytes(m.config.size)}, more than the ${formatBytes(BODY_LIMITS.config)} tsbuild accepts`, {
      registry: repo.host.registry,
      repository: repo.path,
    });
  }
  const blobs = [m.config, ...m.layers];
  const limit = pLimit(Math.max(1, parallelism));
  const ac = new AbortController();
  const signal = AbortSignal.any([ctx.signal, ac.signal]);
  const results = await Promise.allSettled(
    blobs.map((b) =>
      limit(async () => {
        try {
          return await fetchBlob(repo, b, store, { ...ctx, signal });
        } catch (e) {
          ac.abort(e); // fail fast: the siblings stop downloading
          throw e;
        }
      }),
    ),
  );
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw ctx.signal.aborted ? ctx.signal.reason : firstCause(results);
  const downloaded = results.filter((r) => r.status === 'fulfilled' && r.value).length;
  await store.putBytes(manifest.bytes);
  return { manifest: chosen, config: m.config, ...(indexDigest ? { indexDigest } : {}), downloaded };
}

/** The first error that is not just the fail-fast abort of a sibling. */
function firstCause(results: PromiseSettledResult<unknown>[]): unknown {
  const errs = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as unknown);
  return errs.find((e) => !(e instanceof Error && e.name === 'AbortError')) ?? errs[0];
}

/** Downloads one blob of `repo` into `store` unless present, verified before it becomes visible; returns whether it downloaded. */
export async function fetchBlob(repo: Repository, blob: Descriptor, store: ContentStore, ctx: Ctx): Promise<boolean> {
  const have = await store.stat(blob.digest);
  if (have && have.size === blob.size) return false;
  const what = `pull blob ${blob.digest}`;
  const body = await repo.openBlob(blob.digest, ctx.signal);
  const writer = store.createWriter({ digest: blob.digest, size: blob.size });
  // The descriptor's size, not the server's Content-Length, bounds what reaches the disk.
  const cap = capBytes(blob.size, () =>
    new RegistryError('REGISTRY', `${what}: registry ${repo.host.registry} repository ${repo.path} sent more than the ${blob.size} bytes its descriptor says; the connection was dropped`, {
      registry: repo.host.registry,
      repository: repo.path,
    }),
  );
  try {
    await pipeline(withByteProgress(body, ctx.events, `pull ${blob.digest}`, blob.size), cap, writer.stream, { signal: ctx.signal });
    await writer.commit();
  } catch (e) {
    await writer.abort();
    body.destroy();
    if (e instanceof BuildError && e.code === 'STORE_CORRUPT') {
      throw new RegistryError('REGISTRY', `pull blob ${blob.digest} from registry ${repo.host.registry} repository ${repo.path}: the content does not match its descriptor (${e.message}); nothing was stored`, {
        registry: repo.host.registry,
        repository: repo.path,
        cause: e,
      });
    }
    throw ctx.signal.aborted ? e : repo.host.bodyError(e, { repository: repo.path, what });
  }
  return true;
}

/** A descriptor tsbuild can fetch: a digest and a byte size that is a non-negative integer. */
function isBlobDescriptor(d: Descriptor | undefined): boolean {
  return !!d && isDigest(d.digest) && Number.isSafeInteger(d.size) && d.size >= 0;
}

function parseJson<T>(bytes: Buffer, name: string, digest: Digest): T {
  try {
    return JSON.parse(bytes.toString('utf8')) as T;
  } catch (e) {
    throw new BuildError('REGISTRY', `${name}: manifest ${digest} is not valid JSON`, { cause: e });
  }
}

import { stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { join, resolve } from 'node:path';
import { readIgnoreFile } from './read-dockerfile.js';
import type { Ctx } from '../ctx.js';
import { BuildError } from '../errors.js';
import type { ImageResolver, NamedContext } from '../frontend/compile.js';
import { isDigest, type Digest } from '../oci/digest.js';
import { parseLayoutSpec } from '../oci/layout-spec.js';
import { MediaType } from '../oci/media-types.js';
import { readImage } from '../oci/image-reader.js';
import { ImageLayout, type IndexDescriptor } from '../oci/image-layout.js';
import type { ContentStore } from '../oci/content-store.js';
import type { Platform } from '../oci/image.js';
import type { Worker } from '../solver/worker.js';

const REF_NAME = 'org.opencontainers.image.ref.name';

/**
 * `oci-layout://DIR[:TAG][@DIGEST]` of a --build-context: the directory (resolved), the tag, the
 * digest (what buildx passes BuildKit; it wins over the tag) and the image ref the build's image
 * op carries for it (what provenance maps back to the context name).
 */
export function ociLayoutSpec(value: string): { dir: string; tag?: string; digest?: string; ref: string } {
  const spec = parseLayoutSpec(value.slice('oci-layout://'.length));
  const ref = `oci-layout://${spec.dir}${spec.tag !== undefined ? `:${spec.tag}` : ''}${spec.digest !== undefined ? `@${spec.digest}` : ''}`;
  return { ...spec, ref };
}

/** Named contexts ready for the frontend, plus the resolver that knows the oci-layout images. */
export interface PreparedContexts {
  readonly contexts: ReadonlyMap<string, NamedContext>;
  /** Wraps the store resolver: `oci-layout://…` refs resolve to the imported manifest. */
  wrap(resolver: ImageResolver): ImageResolver;
}

/**
 * `--build-context NAME=VALUE`: a directory (absolute or relative to the working directory),
 * `docker-image://REF` (FROM resolution: store, then registry) or `oci-layout://DIR[:TAG]`. An
 * OCI layout's image is copied into the content store (blobs only, untagged: it is not a named
 * image of this store) so that the image op finds it by digest.
 */
export async function prepareNamedContexts(specs: Readonly<Record<string, string>>, worker: Worker, ctx: Ctx): Promise<PreparedContexts> {
  const contexts = new Map<string, NamedContext>();
  const layouts = new Map<string, IndexDescriptor>();
  for (const [name, value] of Object.entries(specs)) {
    ctx.signal.throwIfAborted();
    const flag = `--build-context ${name}=${value}`;
    if (value.startsWith('docker-image://')) {
      const ref = value.slice('docker-image://'.length);
      // An empty state, never a pull (BuildKit dockerui namedcontext.go: EmptyImageName).
      contexts.set(name, ref === 'scratch' ? { kind: 'scratch' } : { kind: 'image', ref });
    } else if (value.startsWith('oci-layout://')) {
      const { dir, tag, digest, ref } = ociLayoutSpec(value);
      if (digest !== undefined && !isDigest(digest)) throw new BuildError('USAGE', `${flag}: ${JSON.stringify(digest)} is not a digest (sha256:<64 hex digits>)`);
      const layout = await ImageLayout.open(dir, { create: false }).catch((e: unknown) => {
        throw new BuildError('USAGE', `${flag}: ${dir} is not an OCI image layout: ${(e as Error).message}`, { cause: e });
      });
      const all = (await layout.readIndex()).manifests;
      const desc = digest !== undefined
        ? await byDigest(layout, all, digest)
        : tag !== undefined ? all.find((m) => m.annotations?.[REF_NAME] === tag) : all.length === 1 ? all[0] : all.find((m) => m.annotations?.[REF_NAME] === 'latest');
      if (!desc) {
        const what = digest !== undefined ? digest : tag !== undefined ? `tagged ${JSON.stringify(tag)}` : 'to pick (several in the index; add :TAG)';
        throw new BuildError('USAGE', `${flag}: no image ${what} in ${dir}`, {
          hint: `tags there: ${all.map((m) => m.annotations?.[REF_NAME]).filter(Boolean).join(', ') || 'none'}`,
        });
      }
      await copyClosure(layout.blobs, worker.blobs, desc.digest, ctx);
      layouts.set(ref, desc);
      contexts.set(name, { kind: 'image', ref });
    } else {
      const dir = resolve(value);
      if (!(await stat(dir).catch(() => undefined))?.isDirectory()) throw new BuildError('USAGE', `${flag}: ${dir} is not a directory`);
      // The directory's own .dockerignore applies, as BuildKit's dockerui namedcontext.go reads it.
      contexts.set(name, { kind: 'dir', dir, dockerignore: readIgnoreFile(join(dir, '.dockerignore')) ?? '' });
    }
  }
  return {
    contexts,
    wrap: (inner) => ({
      async resolve(ref: string, platform: Platform, c: Ctx) {
        const desc = layouts.get(ref);
        if (!desc) return inner.resolve(ref, platform, c);
        const image = await readImage(worker.blobs, desc, platform);
        return { ref, digest: desc.digest, config: image.config };
      },
    }),
  };
}

/** The index entry with `digest`, else any manifest or index blob of the layout with it. */
async function byDigest(layout: ImageLayout, all: readonly IndexDescriptor[], digest: Digest): Promise<IndexDescriptor | undefined> {
  const listed = all.find((m) => m.digest === digest);
  if (listed) return listed;
  const st = await layout.blobs.stat(digest);
  if (!st) return undefined;
  const raw = await layout.blobs.readJson<{ mediaType?: string; manifests?: unknown }>(digest);
  const mediaType = raw.mediaType ?? (Array.isArray(raw.manifests) ? MediaType.ociIndex : MediaType.ociManifest);
  return { mediaType, digest, size: st.size };
}

/** Copies a manifest or index and everything it references from `src` to `dst`, skipping blobs already there. */
async function copyClosure(src: ContentStore, dst: ContentStore, digest: Digest, ctx: Ctx): Promise<void> {
  ctx.signal.throwIfAborted();
  const raw = await src.readJson<{ manifests?: { digest: Digest }[]; config?: { digest: Digest }; layers?: { digest: Digest }[] }>(digest);
  for (const m of raw.manifests ?? []) {
    if (await src.has(m.digest)) await copyClosure(src, dst, m.digest, ctx);
  }
  for (const d of [...(raw.config ? [raw.config.digest] : []), ...(raw.layers ?? []).map((l) => l.digest)]) await copyBlob(src, dst, d, ctx);
  await copyBlob(src, dst, digest, ctx);
}

async function copyBlob(src: ContentStore, dst: ContentStore, digest: Digest, ctx: Ctx): Promise<void> {
  if (await dst.has(digest)) return;
  const w = dst.createWriter({ digest });
  try {
    await pipeline(src.openRead(digest), w.stream, { signal: ctx.signal });
    await w.commit();
  } catch (e) {
    await w.abort();
    throw e;
  }
}

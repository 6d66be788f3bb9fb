import { parseLayoutSpec } from '../oci/layout-spec.js';
import { mkdtemp, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import type { Ctx } from '../ctx.js';
import { BuildError } from '../errors.js';
import type { ContentStore } from '../oci/content-store.js';
import { isDigest } from '../oci/digest.js';
import type { Platform } from '../oci/image.js';
import { ImageLayout, OCI_LAYOUT_FILE, type IndexDescriptor } from '../oci/image-layout.js';
import { readImage, type StoredImage } from '../oci/image-reader.js';
import { REF_NAME_ANNOTATION } from '../oci/media-types.js';
import { findImage } from './list-images.js';
import { loadArchive } from './load-archive.js';

/** The image an `analyze` argument names, with the blobs it reads from. */
export interface AnalyzeSource {
  readonly blobs: ContentStore;
  readonly image: StoredImage;
  /** How the image was named, for the report. */
  readonly name: string;
}

/**
 * Resolves `spec`: `oci-layout://DIR[:TAG|@DIGEST]`, `oci-archive:FILE`, `docker-archive:FILE`,
 * a name or ID in the local `store`, else an existing directory with an `oci-layout` file or an
 * existing file (an OCI or docker archive, told apart by its contents). An archive is loaded
 * into a layout under `tmpDir` (which the caller removes): archives keep blobs in any order,
 * and this reuses load's checks (digests verified, complete images only). `openFile` opens an
 * archive the user named (the CLI's, which reads a FIFO through the event loop).
 */
export async function resolveAnalyzeSource(spec: string, store: ImageLayout, platform: Platform, tmpDir: string, openFile: (path: string) => Readable, ctx: Ctx): Promise<AnalyzeSource> {
  const archive = /^(oci-archive|docker-archive):(.+)$/.exec(spec);
  if (archive) return fromArchive(openFile(resolve(archive[2]!)), spec, platform, tmpDir, ctx);
  if (spec.startsWith('oci-layout://')) return fromLayout(spec.slice('oci-layout://'.length), spec, platform);
  // A store name wins over a file of that name in the working directory (`analyze app` where ./app exists).
  const found = await findImage(store, spec).catch((e: unknown) => {
    if (e instanceof BuildError && e.code === 'IMAGE_NOT_FOUND') return undefined;
    throw e;
  });
  if (found) return { blobs: store.blobs, image: await readImage(store.blobs, found.descriptor, platform), name: spec };
  const st = await stat(spec).catch(() => undefined);
  if (st?.isDirectory()) {
    if (!(await stat(join(spec, OCI_LAYOUT_FILE)).catch(() => undefined))) {
      throw new BuildError('USAGE', `${spec}: a directory, but not an OCI image layout (no ${OCI_LAYOUT_FILE} file)`);
    }
    return fromLayout(spec, spec, platform);
  }
  if (st?.isFile() || st?.isFIFO()) return fromArchive(openFile(resolve(spec)), spec, platform, tmpDir, ctx);
  throw new BuildError('IMAGE_NOT_FOUND', `image ${spec} is not in the local store, and no layout directory or archive file has that path`, { hint: 'list images with `tsbuild images`' });
}

/** `DIR`, `DIR:TAG` or `DIR@DIGEST`, as --build-context takes them (see parseLayoutSpec). */
async function fromLayout(value: string, name: string, platform: Platform): Promise<AnalyzeSource> {
  const { dir, tag, digest } = parseLayoutSpec(value);
  if (digest !== undefined && !isDigest(digest)) throw new BuildError('USAGE', `${name}: ${JSON.stringify(digest)} is not a digest (sha256:<64 hex digits>)`);
  const layout = await ImageLayout.open(dir, { create: false }).catch((e: unknown) => {
    throw new BuildError('USAGE', `${name}: ${dir} is not an OCI image layout: ${(e as Error).message}`, { cause: e });
  });
  const all = (await layout.readIndex()).manifests;
  const desc: IndexDescriptor | undefined =
    digest !== undefined
      ? all.find((m) => m.digest === digest) ?? { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, size: 0 }
      : tag !== undefined
        ? all.find((m) => m.annotations?.[REF_NAME_ANNOTATION] === tag)
        : all.length === 1 ? all[0] : all.find((m) => m.annotations?.[REF_NAME_ANNOTATION] === 'latest');
  if (!desc) {
    const what = tag !== undefined ? `tagged ${JSON.stringify(tag)}` : 'to pick (several in the index; add :TAG)';
    throw new BuildError('USAGE', `${name}: no image ${what} in ${dir}`, { hint: `tags there: ${all.map((m) => m.annotations?.[REF_NAME_ANNOTATION]).filter(Boolean).join(', ') || 'none'}` });
  }
  return { blobs: layout.blobs, image: await readImage(layout.blobs, desc, platform), name };
}

async function fromArchive(input: Readable, name: string, platform: Platform, tmpDir: string, ctx: Ctx): Promise<AnalyzeSource> {
  const layout = await ImageLayout.open(await mkdtemp(join(tmpDir, 'analyze-')), { create: true });
  const loaded = await new Promise<Awaited<ReturnType<typeof loadArchive>>>((res, rej) => {
    input.once('error', (e) => rej(new BuildError('USAGE', `${name}: ${e.message}`, { cause: e })));
    loadArchive(layout, input, ctx).then(res, rej);
  });
  if (loaded.length !== 1) {
    throw new BuildError('USAGE', `${name}: the archive holds ${loaded.length} images; analyze takes one`, { hint: 'save or export one image per archive' });
  }
  return { blobs: layout.blobs, image: await readImage(layout.blobs, loaded[0]!.manifest, platform), name };
}

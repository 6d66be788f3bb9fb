import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Ctx } from '../ctx.js';
import { BuildError } from '../errors.js';
import { compressionOf } from '../oci/decompress.js';
import { digestFromHex, type Digest } from '../oci/digest.js';
import type { Descriptor } from '../oci/image.js';
import type { ImageLayout, IndexDescriptor, LayoutIndex } from '../oci/image-layout.js';
import { imageTreeBlobs } from '../oci/image-tree.js';
import { readImage } from '../oci/image-reader.js';
import { MediaType, REF_NAME_ANNOTATION } from '../oci/media-types.js';
import { parseReference } from '../oci/reference.js';
import { readTar } from '../oci/tar/tar-reader.js';

/** Metadata files of an archive are small; anything bigger is not what it claims to be. */
const MAX_METADATA_BYTES = 4 << 20;
/**
 * Read after the end-of-archive blocks: tar pads to its record size (10 KiB by default, 1 MiB
 * at `-b 2048`). More is not padding but an endless input (`load -i /dev/zero`), which reads
 * as an empty archive followed by zeros for ever.
 */
const MAX_TRAILING_BYTES = 1 << 20;
const CONTAINERD_NAME = 'io.containerd.image.name';
const DOCKER_LAYER_TAR = 'application/vnd.docker.image.rootfs.diff.tar';

/** An image `load` put in the store. */
export interface LoadedImage {
  /** Normalized names it was tagged with (none when the archive named it not). */
  readonly names: readonly string[];
  readonly manifest: Descriptor;
}

/**
 * Loads an OCI archive (an image layout as a tar) or a docker archive (`docker save`, old
 * `<id>/layer.tar` style or docker 25+ layout style) from `input` into the store, in one
 * streaming pass. Every `blobs/sha256/<hex>` member must hash to its name, or nothing of it is
 * stored (BuildError('STORE_CORRUPT')); other members (old-style layers and configs) are stored
 * under the digest they hash to and referenced by path. Then each image is checked to be
 * complete, and only then tagged: names come from docker's `RepoTags`, else from
 * `io.containerd.image.name`, else from a full reference in `org.opencontainers.image.ref.name`.
 * Unreferenced blobs are left to garbage collection.
 */
export async function loadArchive(layout: ImageLayout, input: Readable, ctx: Ctx): Promise<LoadedImage[]> {
  const byPath = new Map<string, Descriptor>();
  const metadata = new Map<string, Buffer>();
  for await (const m of readTar(input, ctx.signal, { maxTrailingBytes: MAX_TRAILING_BYTES })) {
    if (m.entry.type !== 'file') continue;
    const path = m.entry.path.replace(/^\.\//, '');
    if (path === 'index.json' || path === 'manifest.json' || path === 'oci-layout') {
      if (m.entry.size > MAX_METADATA_BYTES) throw new BuildError('STORE_CORRUPT', `archive member ${path} is ${m.entry.size} bytes; not an image archive`);
      const chunks: Buffer[] = [];
      for await (const c of m.body) chunks.push(c);
      metadata.set(path, Buffer.concat(chunks));
      continue;
    }
    const named = /^blobs\/sha256\/([0-9a-f]{64})$/.exec(path);
    const expected = named ? { digest: digestFromHex(named[1]!), size: m.entry.size } : undefined;
    const w = layout.blobs.createWriter(expected);
    try {
      await pipeline(m.body, w.stream, { signal: ctx.signal });
      const info = await w.commit();
      byPath.set(path, { mediaType: 'application/octet-stream', digest: info.digest, size: info.size });
    } catch (e) {
      await w.abort();
      if (e instanceof BuildError || ctx.signal.aborted) throw e;
      throw new BuildError('STORE_CORRUPT', `archive member ${path}: ${(e as Error).message}`, { cause: e });
    }
  }
  const json = <T>(name: string): T | undefined => {
    const b = metadata.get(name);
    if (!b) return undefined;
    try {
      return JSON.parse(b.toString('utf8')) as T;
    } catch (e) {
      throw new BuildError('STORE_CORRUPT', `archive member ${name} is not valid JSON`, { cause: e });
    }
  };
  const dockerManifest = json<{ Config: string; RepoTags?: string[] | null; Layers: string[] }[]>('manifest.json');
  const index = json<LayoutIndex>('index.json');
  if (!dockerManifest && !index) throw new BuildError('USAGE', 'not an image archive: it has neither index.json (OCI) nor manifest.json (docker)');

  const loaded: LoadedImage[] = [];
  if (dockerManifest) {
    for (const entry of dockerManifest) {
      const manifest = await dockerEntryManifest(layout, entry, byPath, index);
      loaded.push({ names: normalizeNames(entry.RepoTags ?? []), manifest });
    }
  } else {
    for (const m of index!.manifests) {
      const names = [m.annotations?.[CONTAINERD_NAME], m.annotations?.[REF_NAME_ANNOTATION]].filter((n): n is string => !!n && /[:/]/.test(n));
      loaded.push({ names: normalizeNames(names.slice(0, 1)), manifest: { mediaType: m.mediaType, digest: m.digest, size: m.size } });
    }
  }
  for (const l of loaded) {
    // Every platform of an index, not only the host's: a tag must never name a partial image.
    for (const d of await imageTreeBlobs(layout.blobs, l.manifest)) {
      if (!(await layout.blobs.has(d.digest as Digest))) throw new BuildError('STORE_CORRUPT', `archive is incomplete: blob ${d.digest} of image ${l.manifest.digest} is missing`);
    }
  }
  for (const l of loaded) for (const n of l.names) await layout.tag(n, l.manifest as IndexDescriptor);
  return loaded;
}

/** The manifest of one docker `manifest.json` entry: the layout's own when it has one, else made from the paths. */
async function dockerEntryManifest(
  layout: ImageLayout,
  entry: { Config: string; Layers: string[] },
  byPath: ReadonlyMap<string, Descriptor>,
  index: LayoutIndex | undefined,
): Promise<Descriptor> {
  const find = (p: string) => {
    const d = byPath.get(p.replace(/^\.\//, ''));
    if (!d) throw new BuildError('STORE_CORRUPT', `archive is incomplete: manifest.json names ${p}, which is not in it`);
    return d;
  };
  const config = find(entry.Config);
  for (const m of index?.manifests ?? []) {
    const img = await readImage(layout.blobs, m).catch(() => undefined);
    if (img?.configDescriptor.digest === config.digest) return img.manifestDescriptor;
  }
  const layers: Descriptor[] = [];
  for (const p of entry.Layers) {
    const d = find(p);
    const head = await firstBytes(layout.blobs.path(d.digest as Digest), 512);
    const kind = compressionOf(head);
    layers.push({ mediaType: kind === 'gzip' ? MediaType.dockerLayerGzip : kind === 'zstd' ? MediaType.dockerLayerZstd : DOCKER_LAYER_TAR, digest: d.digest, size: d.size });
  }
  const manifest = { schemaVersion: 2, mediaType: MediaType.dockerManifest, config: { mediaType: MediaType.dockerConfig, digest: config.digest, size: config.size }, layers };
  const info = await layout.blobs.putBytes(JSON.stringify(manifest));
  return { mediaType: MediaType.dockerManifest, digest: info.digest, size: info.size };
}

/** The first `n` bytes of a file: enough to tell a layer's compression without reading it whole. */
async function firstBytes(path: string, n: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(n);
    const { bytesRead } = await fh.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

function normalizeNames(names: readonly string[]): string[] {
  return [...new Set(names.map((n) => parseReference(n).toString()))];
}

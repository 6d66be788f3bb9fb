import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BuildError } from '../errors.js';
import { ATTESTATION_REF_DIGEST, isAttestation } from '../oci/attestation.js';
import type { ContentStore } from '../oci/content-store.js';
import { decompressStream } from '../oci/decompress.js';
import { Digester, digestHex, isDigest, sha256, type Digest } from '../oci/digest.js';
import type { Descriptor } from '../oci/image.js';
import { writeFileAtomic } from '../oci/image-layout.js';
import { compressor } from '../oci/layer/blob.js';
import { compressionOfMediaType, defaultLevel, layerMediaType, type CompressionOptions, type LayerCompression } from '../oci/layer/layer-compression.js';
import { MediaType } from '../oci/media-types.js';
import type { RootDirs } from '../root-dirs.js';
import { sweepMemoDir } from '../solver/memo-sweep.js';

/**
 * Layers are stored as a build made them (uncompressed) and compressed when an output needs
 * them: `compressImage` gives the image (or index) `desc` with each layer in the output's
 * compression, writing converted layers and the new manifests into `blobs`. A conversion is
 * remembered by (diffID, compression, level) under `<cache>/compressed-layers/`, so a second
 * export or push of the same layer writes nothing new; prune keeps a remembered blob while its
 * layer is held (gc.ts). Without `force`, only uncompressed layers are converted: a base image's
 * gzip layers stay the bytes the registry had (BuildKit's force-compression=false).
 * The output is deterministic: ParallelGzip cuts fixed-size blocks and zstd's multithreaded
 * mode gives the same frames whatever the thread count, so every machine makes the same blobs.
 */
export async function compressImage(blobs: ContentStore, memoDir: string, desc: Descriptor, opts: CompressionOptions, signal: AbortSignal): Promise<Descriptor> {
  const target = { compression: opts.compression, level: opts.level ?? defaultLevel(opts.compression), force: opts.force ?? false };
  const done = new Map<string, { digest: Digest; size: number }>();
  const convert = async (d: Descriptor, depth: number): Promise<Descriptor> => {
    signal.throwIfAborted();
    if (depth > 4) throw new BuildError('STORE_CORRUPT', `${d.digest}: indexes nested too deeply`);
    const raw = await blobs.readJson<{ mediaType?: string; manifests?: Descriptor[]; config?: Descriptor; layers?: Descriptor[] }>(d.digest);
    if (Array.isArray(raw.manifests) && !Array.isArray(raw.layers)) {
      const manifests: Descriptor[] = [];
      for (const m of raw.manifests) manifests.push(await convert(m, depth + 1).then((c) => ({ ...m, digest: c.digest, size: c.size })));
      if (manifests.every((m, i) => m.digest === raw.manifests![i]!.digest)) return d;
      // An attestation's statement names its image's digest: a recompressed image would leave it
      // pointing at bytes the output does not carry. (Builds attest the compressed image, so
      // only an output asking for another compression than the first one gets here.)
      for (const [i, m] of raw.manifests.entries()) {
        const subject = m.annotations?.[ATTESTATION_REF_DIGEST];
        const changed = raw.manifests.find((c, j) => c.digest === subject && manifests[j]!.digest !== c.digest);
        if (isAttestation(m) && changed) {
          throw new BuildError('USAGE', `attestation ${m.digest} (entry ${i}) is about image ${changed.digest}, which this output's compression (${target.compression}) would change`, {
            hint: 'give every image output of an attested build the same compression, or build without --provenance / --attest',
          });
        }
      }
      return rewritten(d, { ...raw, manifests });
    }
    if (!raw.config || !Array.isArray(raw.layers)) return d; // not an image: nothing to convert
    const docker = (raw.mediaType ?? d.mediaType) === MediaType.dockerManifest;
    let diffIds: readonly string[] | undefined;
    const layers: Descriptor[] = [];
    for (const [i, l] of raw.layers.entries()) {
      const from = compressionOfMediaType(l.mediaType);
      if (from === undefined || from === target.compression || (from !== 'uncompressed' && !target.force)) {
        layers.push(l);
        continue;
      }
      diffIds ??= (await blobs.readJson<{ rootfs?: { diff_ids?: string[] } }>(raw.config.digest)).rootfs?.diff_ids ?? [];
      const diffId = from === 'uncompressed' ? l.digest : diffIds[i];
      if (!diffId || !isDigest(diffId)) throw new BuildError('STORE_CORRUPT', `${d.digest}: layer ${i} has no diff_id in its config`);
      const key = `${diffId} ${from}`;
      let c = done.get(key);
      if (!c) {
        c = await convertLayer(blobs, memoDir, l, from, diffId, target, signal);
        done.set(key, c);
      }
      layers.push({ ...l, mediaType: layerMediaType(target.compression, docker), digest: c.digest, size: c.size });
    }
    if (layers.every((l, i) => l === raw.layers![i])) return d;
    return rewritten(d, { ...raw, layers });
  };
  const rewritten = async (d: Descriptor, doc: unknown): Promise<Descriptor> => {
    const blob = await blobs.putBytes(JSON.stringify(doc));
    return { mediaType: d.mediaType, digest: blob.digest, size: blob.size };
  };
  return convert(desc, 0);
}

/**
 * One layer (`diffId`, stored as `layer`) as an output with `opts` needs it: the same
 * descriptor when no conversion is due, else the converted blob (remembered, see compressImage)
 * with the OCI media type of its compression. For cache exports, which list layers alone.
 */
export async function compressedLayer(blobs: ContentStore, memoDir: string, layer: Descriptor, diffId: Digest, opts: CompressionOptions, signal: AbortSignal): Promise<Descriptor> {
  const target = { compression: opts.compression, level: opts.level ?? defaultLevel(opts.compression) };
  const from = compressionOfMediaType(layer.mediaType);
  if (from === undefined || from === target.compression || (from !== 'uncompressed' && !opts.force)) return layer;
  const c = await convertLayer(blobs, memoDir, layer, from, diffId, target, signal);
  return { mediaType: layerMediaType(target.compression), digest: c.digest, size: c.size };
}

const VERSION = 1;

interface MemoFile {
  readonly version: number;
  /** The layer's diffID (kept so prune can drop entries whose layer is gone). */
  readonly source: Digest;
  readonly compression: LayerCompression;
  readonly level: number;
  readonly digest: Digest;
  readonly size: number;
}

export function compressedLayersDir(dirs: RootDirs): string {
  return join(dirs.cache, 'compressed-layers');
}

/** Layer `l` (stored in `from`, unpacking to `diffId`) in `target`: remembered, else made and remembered. */
async function convertLayer(
  blobs: ContentStore,
  memoDir: string,
  l: Descriptor,
  from: LayerCompression,
  diffId: Digest,
  target: { compression: LayerCompression; level: number },
  signal: AbortSignal,
): Promise<{ digest: Digest; size: number }> {
  const path = join(memoDir, `${digestHex(sha256(`${diffId}\n${target.compression}\n${target.level}`))}.json`);
  const known = await recall(blobs, path, diffId, target);
  if (known) return known;
  // The uncompressed tar is the blob diffId names, verified when it was stored; anything else is
  // decompressed and checked against diffId on the way, so a conversion never changes the content.
  let input: Readable = blobs.openRead(l.digest);
  const check = from === 'uncompressed' ? undefined : new Digester();
  if (check) input = await decompressStream(input, signal);
  const stages: (Readable | Transform)[] = [input];
  if (check) stages.push(check.passThrough());
  if (target.compression !== 'uncompressed') stages.push(compressor({ compression: target.compression, level: target.level }));
  const w = blobs.createWriter(target.compression === 'uncompressed' ? { digest: diffId } : undefined);
  let out: { digest: Digest; size: number };
  try {
    await (pipeline as (...s: unknown[]) => Promise<void>)(...stages, w.stream, { signal });
    const got = check?.digest();
    if (got !== undefined && got !== diffId) throw new BuildError('STORE_CORRUPT', `layer ${l.digest} unpacks to ${got}, not its diff_id ${diffId}`);
    out = await w.commit();
  } catch (e) {
    await w.abort();
    throw e;
  }
  const m: MemoFile = { version: VERSION, source: diffId, compression: target.compression, level: target.level, digest: out.digest, size: out.size };
  await mkdir(memoDir, { recursive: true });
  await writeFileAtomic(path, JSON.stringify(m));
  return out;
}

async function recall(blobs: ContentStore, path: string, diffId: Digest, target: { compression: LayerCompression; level: number }): Promise<{ digest: Digest; size: number } | undefined> {
  let m: Partial<MemoFile>;
  try {
    m = JSON.parse(await readFile(path, 'utf8')) as Partial<MemoFile>;
  } catch {
    return undefined;
  }
  if (m.version !== VERSION || m.source !== diffId || m.compression !== target.compression || m.level !== target.level || !isDigest(m.digest ?? '') || typeof m.size !== 'number') return undefined;
  // prune may have taken the blob while its layer was not held.
  return (await blobs.stat(m.digest!))?.size === m.size ? { digest: m.digest!, size: m.size } : undefined;
}

/** Every remembered conversion: diffID → the blobs made from it (prune keeps them while the layer is held). */
export async function compressedLayers(dir: string): Promise<Map<Digest, Digest[]>> {
  const out = new Map<Digest, Digest[]>();
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (!name.endsWith('.json')) continue;
    const m = await readFile(join(dir, name), 'utf8').then((t) => JSON.parse(t) as Partial<MemoFile>).catch(() => undefined);
    if (!m || typeof m.source !== 'string' || !isDigest(m.source) || typeof m.digest !== 'string' || !isDigest(m.digest)) continue;
    out.set(m.source, [...(out.get(m.source) ?? []), m.digest]);
  }
  return out;
}

/** Prune's sweep: entries whose layer is no longer held. @returns how many went. */
export function sweepCompressedLayers(dir: string, held: (diffId: Digest) => boolean): Promise<number> {
  return sweepMemoDir(dir, async (path) => {
    const source = await readFile(path, 'utf8')
      .then((t) => (JSON.parse(t) as Partial<MemoFile>).source)
      .catch(() => undefined);
    return typeof source === 'string' && isDigest(source) ? [source] : undefined;
  }, held);
}

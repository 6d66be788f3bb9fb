import { readdir } from 'node:fs/promises';
import { PassThrough, Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ContentStore } from '../content-store.js';
import { Digester, type Digest } from '../digest.js';
import { TarWriter } from '../tar/tar-writer.js';
import { writeLayerTar, type DiffOptions } from './diff.js';
import { ParallelGzip } from './parallel-gzip.js';
import { ZstdCompress } from './zstd.js';

export interface LayerBlob {
  /** sha256 of the uncompressed tar: the image config's `rootfs.diff_ids` entry. */
  readonly diffId: Digest;
  /** Digest and size of the blob as stored (equal to diffId and the tar's size when uncompressed). */
  readonly digest: Digest;
  readonly size: number;
  /** The upperdir had no entries: the caller may record an empty layer instead. */
  readonly empty: boolean;
}

/** How {@link writeLayer} encodes the tar: as is (a build's commit), or compressed (an output's conversion). */
export type LayerEncoding = { readonly compression: 'uncompressed' } | { readonly compression: 'gzip' | 'zstd'; readonly level: number };

/**
 * Turns an overlayfs upperdir into an uncompressed OCI layer, streaming (see {@link writeLayer}).
 * A build does not compress: outputs do, on demand (src/exporter/compress-image.ts), so a step
 * never waits for gzip and a build whose image stays local never pays for it (BuildKit too
 * compresses at export). `sink` must consume the stream to its end (typically a content-store
 * writer) and return the blob's digest and size.
 */
export async function createLayerBlob(
  dir: string,
  sink: (blob: Readable) => Promise<{ digest: Digest; size: number }>,
  opts: DiffOptions & { readonly signal?: AbortSignal } = {},
): Promise<LayerBlob> {
  const { signal } = opts;
  signal?.throwIfAborted();
  const empty = (await readdir(dir)).length === 0;
  const blob = await writeLayer((writer) => writeLayerTar(dir, writer, opts, signal), sink, { compression: 'uncompressed' }, signal);
  return { ...blob, empty };
}

/**
 * The one way a layer blob is made: the entries `fill` adds → tar → (diffId digester →
 * compressor, unless uncompressed) → `sink`. Uncompressed, the sink's digest is the diffId, so
 * the tar is hashed once. Nothing is buffered whole; memory is bounded by the stream buffers.
 * If `fill` or the sink fails, both sides are torn down and the first real error is thrown.
 */
export async function writeLayer(
  fill: (writer: TarWriter) => Promise<void>,
  sink: (blob: Readable) => Promise<{ digest: Digest; size: number }>,
  encoding: LayerEncoding,
  signal?: AbortSignal,
): Promise<Omit<LayerBlob, 'empty'>> {
  const writer = new TarWriter();
  const diff = encoding.compression === 'uncompressed' ? undefined : new Digester();
  const stages: (Readable | Transform)[] = [writer.stream];
  if (diff) {
    stages.push(diff.passThrough(), compressor(encoding as Extract<LayerEncoding, { level: number }>));
  }
  const out = stages.length > 1 ? stages[stages.length - 1]! : new PassThrough();
  if (!diff) stages.push(out as Transform);

  const piped = (pipeline as (...s: unknown[]) => Promise<void>)(...stages, signal ? { signal } : {});
  const walked = (async () => {
    try {
      await fill(writer);
      await writer.finish();
    } catch (e) {
      writer.destroy(e as Error);
      throw e;
    }
  })();
  const stored = sink(out).catch((e: unknown) => {
    out.destroy(e as Error);
    throw e;
  });

  const [w, p, s] = await Promise.allSettled([walked, piped, stored]);
  // Prefer the cause over its echoes ("premature close", "destroyed") in the other stages.
  for (const r of [w, s, p]) if (r.status === 'rejected' && !isEcho(r.reason)) throw r.reason;
  for (const r of [w, s, p]) if (r.status === 'rejected') throw r.reason;
  const { digest, size } = (s as PromiseFulfilledResult<{ digest: Digest; size: number }>).value;
  return { diffId: diff ? diff.digest() : digest, digest, size };
}

/** The compressing stage for `encoding`: gzip in fixed-size blocks on every core (ParallelGzip), zstd through libzstd. */
export function compressor(encoding: { readonly compression: 'gzip' | 'zstd'; readonly level: number }): Transform {
  if (encoding.compression === 'gzip') return new ParallelGzip({ level: encoding.level });
  return new ZstdCompress({ level: encoding.level });
}

/** A `sink` that stores the layer in `blobs`, digested while it streams; a failed write leaves nothing behind. */
export function intoContentStore(blobs: ContentStore, signal?: AbortSignal): (blob: Readable) => Promise<{ digest: Digest; size: number }> {
  return async (blob) => {
    const w = blobs.createWriter();
    try {
      await pipeline(blob, w.stream, signal ? { signal } : {});
      return await w.commit();
    } catch (e) {
      await w.abort();
      throw e;
    }
  };
}

function isEcho(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ERR_STREAM_DESTROYED' || /output stream was destroyed/.test(String((e as Error)?.message));
}

import { readdir } from 'node:fs/promises';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ContentStore } from '../content-store.js';
import { Digester, type Digest } from '../digest.js';
import { TarWriter } from '../tar/tar-writer.js';
import { writeLayerTar, type DiffOptions } from './diff.js';
import { ParallelGzip } from './parallel-gzip.js';

export interface LayerBlob {
  /** sha256 of the uncompressed tar: the image config's `rootfs.diff_ids` entry. */
  readonly diffId: Digest;
  /** Digest and size of the gzip blob, as `sink` reported them. */
  readonly digest: Digest;
  readonly size: number;
  /** The upperdir had no entries: the caller may record an empty layer instead. */
  readonly empty: boolean;
}

/**
 * Turns an overlayfs upperdir into a gzip-compressed OCI layer, streaming (see
 * {@link compressLayer}). `sink` must consume the compressed stream to its end (typically a
 * content-store writer) and return the blob's digest and size.
 */
export async function createLayerBlob(
  dir: string,
  sink: (compressed: Readable) => Promise<{ digest: Digest; size: number }>,
  opts: DiffOptions & { readonly signal?: AbortSignal } = {},
): Promise<LayerBlob> {
  const { signal } = opts;
  signal?.throwIfAborted();
  const empty = (await readdir(dir)).length === 0;
  const blob = await compressLayer((writer) => writeLayerTar(dir, writer, opts, signal), sink, signal);
  return { ...blob, empty };
}

/**
 * The one way a layer blob is made: the entries `fill` adds → tar → diffId digester → gzip
 * (level 6 on every core, in fixed-size blocks: see ParallelGzip) → `sink`. Nothing is
 * buffered whole; memory is bounded by the stream buffers. If `fill` or the sink fails, both
 * sides are torn down and the first real error is thrown.
 */
export async function compressLayer(
  fill: (writer: TarWriter) => Promise<void>,
  sink: (compressed: Readable) => Promise<{ digest: Digest; size: number }>,
  signal?: AbortSignal,
): Promise<Omit<LayerBlob, 'empty'>> {
  const writer = new TarWriter();
  const diff = new Digester();
  const tap = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      diff.update(chunk);
      cb(null, chunk);
    },
  });
  const gzip = new ParallelGzip({ level: 6 });

  const piped = pipeline(writer.stream, tap, gzip, signal ? { signal } : {});
  const walked = (async () => {
    try {
      await fill(writer);
      await writer.finish();
    } catch (e) {
      writer.destroy(e as Error);
      throw e;
    }
  })();
  const stored = sink(gzip).catch((e: unknown) => {
    gzip.destroy(e as Error);
    throw e;
  });

  const [w, p, s] = await Promise.allSettled([walked, piped, stored]);
  // Prefer the cause over its echoes ("premature close", "destroyed") in the other stages.
  for (const r of [w, s, p]) if (r.status === 'rejected' && !isEcho(r.reason)) throw r.reason;
  for (const r of [w, s, p]) if (r.status === 'rejected') throw r.reason;
  const { digest, size } = (s as PromiseFulfilledResult<{ digest: Digest; size: number }>).value;
  return { diffId: diff.digest(), digest, size };
}

/** A `sink` that stores the compressed layer in `blobs`, digested while it streams; a failed write leaves nothing behind. */
export function intoContentStore(blobs: ContentStore, signal?: AbortSignal): (compressed: Readable) => Promise<{ digest: Digest; size: number }> {
  return async (compressed) => {
    const w = blobs.createWriter();
    try {
      await pipeline(compressed, w.stream, signal ? { signal } : {});
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

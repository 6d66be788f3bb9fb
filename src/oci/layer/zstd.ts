import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { Transform, type TransformCallback } from 'node:stream';
import { packageFile } from '../../package-file.js';

type Done = (err: Error | null, out: Buffer, consumed: number, frameDone: boolean, capped: boolean) => void;
interface ZstdAddon {
  readonly version: string;
  createCompressor(level: number, workers: number): object;
  createDecompressor(): object;
  process(handle: object, input: Buffer, end: boolean, cb: Done): void;
}

let loaded: ZstdAddon | undefined;

/** native/zstd.c (libzstd), loaded on first use like native-fs.ts's addon. */
function addon(): ZstdAddon {
  if (!loaded) {
    const path = packageFile('native/build/Release/zstd.node');
    try {
      loaded = createRequire(import.meta.url)(path) as ZstdAddon;
    } catch (e) {
      throw new Error(`native addon ${path} could not be loaded; build it with "npm run build" (needs libzstd-dev)`, { cause: e });
    }
  }
  return loaded;
}

/** libzstd's version, e.g. "1.5.4". */
export function zstdVersion(): string {
  return addon().version;
}

function run(handle: object, input: Buffer, end: boolean): Promise<{ out: Buffer; consumed: number; frameDone: boolean; capped: boolean }> {
  return new Promise((resolve, reject) => {
    addon().process(handle, input, end, (err, out, consumed, frameDone, capped) => (err ? reject(err) : resolve({ out, consumed, frameDone, capped })));
  });
}

/**
 * zstd compression on libzstd's worker threads (one per core by default; the work runs off the
 * event loop). The frames do not depend on `workers` (see native/zstd.c), so the same input and
 * level give the same bytes on every machine. Frames carry a content checksum, as zstd(1) writes.
 */
export class ZstdCompress extends Transform {
  readonly #handle: object;

  constructor(opts: { level?: number; workers?: number } = {}) {
    super();
    this.#handle = addon().createCompressor(opts.level ?? 3, Math.max(1, opts.workers ?? availableParallelism()));
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    run(this.#handle, chunk, false).then(({ out }) => cb(null, out.length ? out : undefined), cb);
  }

  override _flush(cb: TransformCallback): void {
    run(this.#handle, Buffer.alloc(0), true).then(({ out }) => cb(null, out.length ? out : undefined), cb);
  }
}

/**
 * zstd decompression off the event loop. Each native call returns at most a few MiB, so a small
 * hostile input cannot balloon memory in one step; a stream that stops inside a frame is an error.
 */
export class ZstdDecompress extends Transform {
  readonly #handle = addon().createDecompressor();
  #frameDone = false;
  #seen = false;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#drain(chunk).then(() => cb(), cb);
  }

  override _flush(cb: TransformCallback): void {
    if (this.#seen && !this.#frameDone) cb(new Error('zstd: unexpected end of input (truncated frame)'));
    else if (!this.#seen) cb(new Error('zstd: empty input'));
    else cb();
  }

  async #drain(chunk: Buffer): Promise<void> {
    let rest = chunk;
    for (;;) {
      const { out, consumed, frameDone, capped } = await run(this.#handle, rest, false);
      this.#seen ||= rest.length > 0;
      if (consumed > 0 || out.length > 0) this.#frameDone = frameDone;
      if (out.length) this.push(out);
      rest = rest.subarray(consumed);
      if (rest.length === 0 && !capped) return;
    }
  }
}

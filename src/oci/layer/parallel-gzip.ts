import { availableParallelism } from 'node:os';
import { Transform, type TransformCallback } from 'node:stream';
import { constants, crc32, deflateRaw, type ZlibOptions } from 'node:zlib';

/**
 * Input bytes per independently compressed block. Fixed, so the output is the same whatever
 * the number of cores (a blob's digest must not depend on the machine, see issue 08).
 */
export const GZIP_BLOCK = 1024 * 1024;
/** Deflate's window: each block is primed with the previous block's last 32 KiB, as pigz does, so the ratio stays gzip's. */
const WINDOW = 32 * 1024;
/** The header Node's createGzip writes: no name, mtime 0, XFL 0, OS 3 (Unix). */
const HEADER = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03]);

function deflateBlock(block: Buffer, opts: ZlibOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => deflateRaw(block, opts, (err, out) => (err ? reject(err) : resolve(out))));
}

/**
 * gzip on every core, pigz's way: the input is cut into {@link GZIP_BLOCK}-byte blocks, each
 * compressed on its own by zlib on libuv's thread pool (Node's async zlib calls run there, off
 * the main thread) with the previous block's tail as its dictionary; every block but the last
 * ends in a sync flush, so their raw deflate streams join into one valid gzip member. The
 * CRC-32 and size are computed in order on the main thread (zlib.crc32, GB/s).
 *
 * Hand-written rather than a library: the npm pigz ports either spawn `pigz` (not installed
 * here, and its output depends on its version) or compress in one stream; this is ~80 lines
 * over Node's own zlib. Memory: at most `parallelism` blocks in flight plus one being filled.
 */
export class ParallelGzip extends Transform {
  readonly #level: number;
  readonly #parallelism: number;
  #parts: Buffer[] = [];
  #partsLength = 0;
  #tail: Buffer = Buffer.alloc(0);
  #crc = 0;
  #size = 0;
  #started = false;
  readonly #inflight: Promise<Buffer>[] = [];

  constructor(opts: { level?: number; parallelism?: number } = {}) {
    super();
    this.#level = opts.level ?? 6;
    this.#parallelism = Math.max(1, opts.parallelism ?? availableParallelism());
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#crc = crc32(chunk, this.#crc);
    this.#size = (this.#size + chunk.length) % 2 ** 32;
    this.#parts.push(chunk);
    this.#partsLength += chunk.length;
    this.#drainFull().then(() => cb(), cb);
  }

  override _flush(cb: TransformCallback): void {
    (async () => {
      await this.#drainFull();
      this.#dispatch(this.#take(this.#partsLength), true);
      while (this.#inflight.length) this.#emit(await this.#inflight.shift()!);
      const trailer = Buffer.alloc(8);
      trailer.writeUInt32LE(this.#crc >>> 0, 0);
      trailer.writeUInt32LE(this.#size >>> 0, 4);
      this.push(trailer);
    })().then(() => cb(), cb);
  }

  /** Sends every full block off; waits for the oldest whenever `parallelism` are in flight. */
  async #drainFull(): Promise<void> {
    while (this.#partsLength >= GZIP_BLOCK) {
      this.#dispatch(this.#take(GZIP_BLOCK), false);
      if (this.#inflight.length >= this.#parallelism) this.#emit(await this.#inflight.shift()!);
    }
  }

  #dispatch(block: Buffer, last: boolean): void {
    const opts: ZlibOptions = { level: this.#level, ...(this.#tail.length ? { dictionary: this.#tail } : {}), ...(last ? {} : { finishFlush: constants.Z_SYNC_FLUSH }) };
    const done = deflateBlock(block, opts);
    // Settled later, in order; a failure must not surface as an unhandled rejection meanwhile.
    done.catch(() => undefined);
    this.#inflight.push(done);
    this.#tail = block.length >= WINDOW ? block.subarray(block.length - WINDOW) : Buffer.concat([this.#tail, block]).subarray(-WINDOW);
  }

  #emit(out: Buffer): void {
    if (!this.#started) {
      this.#started = true;
      this.push(HEADER);
    }
    this.push(out);
  }

  #take(n: number): Buffer {
    const all = this.#parts.length === 1 ? this.#parts[0]! : Buffer.concat(this.#parts, this.#partsLength);
    this.#parts = n < all.length ? [all.subarray(n)] : [];
    this.#partsLength = all.length - n;
    return all.subarray(0, n);
  }
}

import { abortable } from '../../abortable.js';
import { TarFormatError } from './tar-entry.js';

/**
 * Pull-based reads of exact byte counts from an async stream of Buffers, without copying
 * when a request fits in the current chunk. Holds at most one source chunk plus a partial
 * block, so memory does not grow with the input.
 */
export class ByteSource {
  readonly #it: AsyncIterator<Buffer | Uint8Array | string>;
  #chunks: Buffer[] = [];
  #len = 0;
  #done = false;
  readonly #signal: AbortSignal | undefined;
  readonly #source: AsyncIterable<Buffer | Uint8Array | string> & { destroy?: () => void };

  /** `signal` ends a wait for the next chunk, even one the source never answers (a silent pipe). */
  constructor(source: AsyncIterable<Buffer | Uint8Array | string> & { destroy?: () => void }, signal?: AbortSignal) {
    this.#source = source;
    this.#it = source[Symbol.asyncIterator]();
    this.#signal = signal;
  }

  #next(): Promise<IteratorResult<Buffer | Uint8Array | string>> {
    return abortable(this.#it.next(), this.#signal);
  }

  async #fill(n: number): Promise<void> {
    while (this.#len < n && !this.#done) {
      const r = await this.#next();
      if (r.done) {
        this.#done = true;
        break;
      }
      const b = typeof r.value === 'string' ? Buffer.from(r.value) : Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value.buffer, r.value.byteOffset, r.value.length);
      if (b.length === 0) continue;
      this.#chunks.push(b);
      this.#len += b.length;
    }
  }

  #take(n: number): Buffer {
    const first = this.#chunks[0]!;
    if (first.length >= n) {
      this.#len -= n;
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const c = this.#chunks[0]!;
      const k = Math.min(c.length, n - off);
      c.copy(out, off, 0, k);
      off += k;
      if (k === c.length) this.#chunks.shift();
      else this.#chunks[0] = c.subarray(k);
    }
    this.#len -= n;
    return out;
  }

  /** Exactly `n` bytes; undefined at a clean end of input; throws when the input stops midway. */
  async readExact(n: number): Promise<Buffer | undefined> {
    await this.#fill(n);
    if (this.#len === 0) return undefined;
    if (this.#len < n) throw new TruncatedError(n, this.#len);
    return this.#take(n);
  }

  /** Between 1 and `max` bytes, whatever is at hand first; throws at end of input. */
  async readSome(max: number): Promise<Buffer> {
    await this.#fill(1);
    if (this.#len === 0) throw new TruncatedError(1, 0);
    return this.#take(Math.min(max, this.#chunks[0]!.length));
  }

  /** Discards `n` bytes; throws when the input ends first. */
  async skip(n: number): Promise<void> {
    while (n > 0) n -= (await this.readSome(n)).length;
  }

  /**
   * Reads and discards the rest of the input, so a producer waiting on backpressure can finish;
   * at most `limit` bytes, so an endless input (/dev/zero, a pipe that never closes) cannot
   * keep us reading. The caller closes the source then.
   */
  async drain(limit: number): Promise<void> {
    let left = limit - this.#len;
    this.#chunks = [];
    this.#len = 0;
    while (!this.#done && left > 0) {
      const r = await this.#next();
      if (r.done) this.#done = true;
      else left -= r.value.length;
    }
  }

  /** Stops the underlying iterator (destroying a Readable source) when abandoning the input. */
  async close(): Promise<void> {
    if (!this.#done) {
      this.#done = true;
      if (this.#signal?.aborted && this.#source.destroy) {
        // A read may still be pending, and a stream's iterator runs return() only after it:
        // waiting would hang on the very input the abort gave up on. Destroy the stream instead.
        this.#source.destroy();
        return;
      }
      await this.#it.return?.();
    }
  }
}

/** The input ended inside a header or body. */
export class TruncatedError extends TarFormatError {
  constructor(wanted: number, got: number) {
    super(`tar: unexpected end of archive (needed ${wanted} bytes, got ${got})`);
  }
}

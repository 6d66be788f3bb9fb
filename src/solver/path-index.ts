/**
 * Strings numbered in the order they were added (row 0, 1, …), held as bytes: the UTF-8 of all
 * of them back to back in one buffer, found through an open-addressing table of row numbers.
 * For per-file tables that live for a whole build (StatCache): a Map keyed by path strings kept
 * two or three heap objects per file alive, and V8 lets garbage grow in proportion to what is
 * live before it collects, so 100k files cost several times their own size in peak RSS.
 * Hand-written because no maintained package offers a string-keyed table outside the JS heap.
 */
export class PathIndex {
  #bytes: Buffer = Buffer.allocUnsafe(64 * 1024);
  /** Bytes of #bytes holding keys; a key being looked up is encoded just past them. */
  #used = 0;
  #starts: Uint32Array = new Uint32Array(1024);
  #lengths: Uint32Array = new Uint32Array(1024);
  #hashes: Uint32Array = new Uint32Array(1024);
  /** Row + 1 per slot, 0 when empty; a power of two, at most half full. */
  #slots: Uint32Array = new Uint32Array(2048);
  #size = 0;

  get size(): number {
    return this.#size;
  }

  /** The row of `key`, or -1 when it was never added. */
  find(key: string): number {
    const n = this.#encode(key);
    return this.#slots[this.#probe(fnv1a(this.#bytes, this.#used, n), n)]! - 1;
  }

  /** The row of `key`, adding it (as the next row) when new. */
  add(key: string): number {
    if ((this.#size + 1) * 2 > this.#slots.length) this.#rehash(this.#slots.length * 2);
    const n = this.#encode(key);
    const hash = fnv1a(this.#bytes, this.#used, n);
    const slot = this.#probe(hash, n);
    if (this.#slots[slot] !== 0) return this.#slots[slot]! - 1;
    const row = this.#size++;
    if (row === this.#starts.length) {
      this.#starts = grown(this.#starts);
      this.#lengths = grown(this.#lengths);
      this.#hashes = grown(this.#hashes);
    }
    this.#starts[row] = this.#used;
    this.#lengths[row] = n;
    this.#hashes[row] = hash;
    this.#used += n;
    this.#slots[slot] = row + 1;
    return row;
  }

  /** The key of `row`. */
  key(row: number): string {
    return this.#bytes.toString('utf8', this.#starts[row], this.#starts[row]! + this.#lengths[row]!);
  }

  /** Writes `key` just past the stored keys (without keeping it); returns its byte length. */
  #encode(key: string): number {
    const n = Buffer.byteLength(key);
    if (this.#used + n > this.#bytes.length) {
      const bytes = Buffer.allocUnsafe(Math.max(this.#used + n, this.#bytes.length * 2));
      this.#bytes.copy(bytes, 0, 0, this.#used);
      this.#bytes = bytes;
    }
    this.#bytes.write(key, this.#used, 'utf8');
    return n;
  }

  /** The slot holding the key encoded at #used (`n` bytes), or the empty slot where it would go. */
  #probe(hash: number, n: number): number {
    const mask = this.#slots.length - 1;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const r = this.#slots[slot]!;
      if (r === 0) return slot;
      const row = r - 1;
      const start = this.#starts[row]!;
      if (this.#hashes[row] === hash && this.#lengths[row] === n && this.#bytes.compare(this.#bytes, start, start + n, this.#used, this.#used + n) === 0) return slot;
    }
  }

  #rehash(size: number): void {
    const slots = new Uint32Array(size);
    const mask = size - 1;
    for (let row = 0; row < this.#size; row++) {
      let slot = this.#hashes[row]! & mask;
      while (slots[slot] !== 0) slot = (slot + 1) & mask;
      slots[slot] = row + 1;
    }
    this.#slots = slots;
  }
}

/** 32-bit FNV-1a of `n` bytes of `buf` from `start`. */
function fnv1a(buf: Buffer, start: number, n: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < start + n; i++) h = Math.imul(h ^ buf[i]!, 0x01000193);
  return h >>> 0;
}

function grown(a: Uint32Array): Uint32Array {
  const out = new Uint32Array(a.length * 2);
  out.set(a);
  return out;
}

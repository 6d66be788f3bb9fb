import { digestFromHex, digestHex, type Digest } from '../oci/digest.js';

const DIGEST_BYTES = 32;

/**
 * The files one COPY/ADD selects, each with its checksum, in walk order: what `--explain`
 * compares between builds. Held as bytes (the paths back to back in one buffer, the digests
 * raw, 32 bytes each) instead of a Map of strings: a Map made three heap objects per file live
 * for the whole build, and as V8 sizes its old generation by what is live, a 100k-file
 * context let the build's garbage pile up to several times that before a full GC (issue 10).
 * Append-only; strings are made again only while it is iterated.
 */
export class SelectedFiles implements Iterable<readonly [string, Digest]> {
  #paths: Buffer = Buffer.allocUnsafe(4096);
  #pathBytes = 0;
  /** End offset in #paths of each path. */
  #ends = new Uint32Array(64);
  #digests: Buffer = Buffer.allocUnsafe(64 * DIGEST_BYTES);
  #size = 0;

  static from(entries: Iterable<readonly [string, Digest]>): SelectedFiles {
    const out = new SelectedFiles();
    for (const [path, digest] of entries) out.add(path, digest);
    return out;
  }

  get size(): number {
    return this.#size;
  }

  add(path: string, digest: Digest): void {
    const n = Buffer.byteLength(path);
    if (this.#pathBytes + n > this.#paths.length) this.#paths = grown(this.#paths, this.#pathBytes + n);
    this.#paths.write(path, this.#pathBytes, 'utf8');
    this.#pathBytes += n;
    if (this.#size === this.#ends.length) {
      const ends = new Uint32Array(this.#ends.length * 2);
      ends.set(this.#ends);
      this.#ends = ends;
      this.#digests = grown(this.#digests, this.#digests.length * 2);
    }
    this.#ends[this.#size] = this.#pathBytes;
    this.#digests.write(digestHex(digest), this.#size * DIGEST_BYTES, 'hex');
    this.#size++;
  }

  *[Symbol.iterator](): Generator<readonly [string, Digest]> {
    let start = 0;
    for (let i = 0; i < this.#size; i++) {
      const end = this.#ends[i]!;
      yield [this.#paths.toString('utf8', start, end), digestFromHex(this.#digests.toString('hex', i * DIGEST_BYTES, (i + 1) * DIGEST_BYTES))];
      start = end;
    }
  }
}

/** A copy of `buf` at least `min` bytes long (doubling, so appends stay amortized O(1)). */
function grown(buf: Buffer, min: number): Buffer {
  const out = Buffer.allocUnsafe(Math.max(min, buf.length * 2));
  buf.copy(out);
  return out;
}

/**
 * `JSON.stringify({ ...head, [name]: value })` in pieces, `value` being JSON already given in
 * pieces (filesJson): a record whose file list must never be one string.
 */
export function* jsonWithMember(head: object, name: string, value: Iterable<string>): Generator<string> {
  const open = JSON.stringify(head).slice(0, -1);
  yield `${open}${open === '{' ? '' : ','}${JSON.stringify(name)}:`;
  yield* value;
  yield '}';
}

/** Entries per piece of {@link filesJson}. */
const JSON_PIECE = 2000;

/**
 * `JSON.stringify([...files])` in pieces of {@link JSON_PIECE} entries, for writing with
 * writeFileAtomic: the list of a 100k-file context never exists as one array or one string.
 */
export function* filesJson(files: Iterable<readonly [string, Digest]>): Generator<string> {
  let piece = '[';
  let n = 0;
  for (const entry of files) {
    piece += `${n === 0 ? '' : ','}${JSON.stringify(entry)}`;
    if (++n % JSON_PIECE === 0) {
      yield piece;
      piece = '';
    }
  }
  yield `${piece}]`;
}

import { closeSync, createReadStream, fstatSync, openSync, readFileSync, type Stats } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { writeFileAtomic } from '../oci/image-layout.js';
import { digestFromHex, digestHex, type Digest } from '../oci/digest.js';
import { PathIndex } from './path-index.js';

/**
 * A file whose mtime or ctime is this close to the moment it was hashed may still be written to
 * within the same (coarse, jiffy-sized) timestamp tick without either changing; such checksums
 * are not remembered ("racy git"). Well above any kernel's timestamp granularity.
 */
const RACY_MS = 250;
/** 2: JSON lines (1 was one JSON object, parsed whole). */
const VERSION = 2;
/** Entries per piece of the saved file. */
const SAVE_PIECE = 2000;

/** Per row of {@link StatCache}: what must be unchanged for a remembered checksum to still be trusted (git's index does the same). */
const SIZE = 0;
const MTIME = 1;
const CTIME = 2;
const INO = 3;
const FIELDS = 4;
const DIGEST_BYTES = 32;

/**
 * Remembers the content checksum of files by (path, size, mtime, ctime, inode), so that a
 * rebuild of an unchanged context stats files but reads none of their bytes. Persisted as one
 * file of JSON lines (written atomically; a damaged or foreign file is ignored, never trusted
 * partially). Several processes may share the file: the last writer wins, which only costs
 * re-hashing.
 *
 * Held in typed arrays, a row per path (PathIndex), not as a Map of objects: it lives for the
 * whole build, and 100k files' worth of heap objects made V8 let the build's garbage grow to
 * several times their size before collecting it (issue 10).
 */
export class StatCache {
  readonly #file: string | undefined;
  readonly #paths = new PathIndex();
  /** {@link FIELDS} numbers per row. */
  #stats = new Float64Array(1024 * FIELDS);
  /** The sha256 of each row, raw. */
  #digests: Buffer = Buffer.alloc(1024 * DIGEST_BYTES);
  #dirty = false;

  private constructor(file: string | undefined) {
    this.#file = file;
  }

  /** An empty cache that is never saved (for callers that want no persistence). */
  static memory(): StatCache {
    return new StatCache(undefined);
  }

  /** Loads the cache persisted at `file`; missing or unreadable means empty. */
  static async load(file: string): Promise<StatCache> {
    const cache = new StatCache(file);
    try {
      if (await cache.#read(file)) return cache;
    } catch {
      // Missing or damaged: start empty; the worst case is hashing everything once.
    }
    return new StatCache(file);
  }

  /** The checksum recorded for `path` if `st` still matches what it was recorded with. */
  get(path: string, st: Stats): Digest | undefined {
    const row = this.#paths.find(path);
    if (row < 0 || !this.#matches(row, st)) return undefined;
    return digestFromHex(this.#digests.toString('hex', row * DIGEST_BYTES, (row + 1) * DIGEST_BYTES));
  }

  /** Records `digest` for `path` as of `st` (skipped when the file is too fresh to be trusted). */
  set(path: string, st: Stats, digest: Digest, now = Date.now()): void {
    if (now - Math.max(st.mtimeMs, st.ctimeMs) < RACY_MS) return;
    const hex = digestHex(digest);
    // One lookup: add() finds the row of a known path, and a new path's row is past the old size.
    const rows = this.#paths.size;
    const row = this.#paths.add(path);
    if (row < rows && this.#matches(row, st) && this.#digests.toString('hex', row * DIGEST_BYTES, (row + 1) * DIGEST_BYTES) === hex) return;
    this.#put(row, st.size, st.mtimeMs, st.ctimeMs, st.ino, hex);
    this.#dirty = true;
  }

  get size(): number {
    return this.#paths.size;
  }

  /** Writes the cache back if anything changed. */
  async save(): Promise<void> {
    if (!this.#file || !this.#dirty) return;
    await mkdir(dirname(this.#file), { recursive: true });
    await writeFileAtomic(this.#file, this.#lines());
    this.#dirty = false;
  }

  #matches(row: number, st: Stats): boolean {
    const f = row * FIELDS;
    return this.#stats[f + SIZE] === st.size && this.#stats[f + MTIME] === st.mtimeMs && this.#stats[f + CTIME] === st.ctimeMs && this.#stats[f + INO] === st.ino;
  }

  #put(row: number, size: number, mtimeMs: number, ctimeMs: number, ino: number, hex: string): void {
    if ((row + 1) * FIELDS > this.#stats.length) {
      const stats = new Float64Array(this.#stats.length * 2);
      stats.set(this.#stats);
      this.#stats = stats;
      const digests = Buffer.alloc(this.#digests.length * 2);
      this.#digests.copy(digests);
      this.#digests = digests;
    }
    const f = row * FIELDS;
    this.#stats[f + SIZE] = size;
    this.#stats[f + MTIME] = mtimeMs;
    this.#stats[f + CTIME] = ctimeMs;
    this.#stats[f + INO] = ino;
    this.#digests.write(hex, row * DIGEST_BYTES, 'hex');
  }

  /**
   * The file: a header line, one JSON array `[path, size, mtimeMs, ctimeMs, ino, hex]` per
   * line, and a trailer with the count (a cut-short file is not taken), in pieces of
   * {@link SAVE_PIECE} lines; a 100k-file context never makes one large string.
   */
  *#lines(): Generator<string> {
    yield `${HEADER}\n`;
    let piece = '';
    for (let row = 0; row < this.#paths.size; row++) {
      const f = row * FIELDS;
      const hex = this.#digests.toString('hex', row * DIGEST_BYTES, (row + 1) * DIGEST_BYTES);
      piece += `${JSON.stringify([this.#paths.key(row), this.#stats[f + SIZE], this.#stats[f + MTIME], this.#stats[f + CTIME], this.#stats[f + INO], hex])}\n`;
      if ((row + 1) % SAVE_PIECE === 0) {
        yield piece;
        piece = '';
      }
    }
    yield `${piece}${JSON.stringify({ entries: this.#paths.size })}\n`;
  }

  /** Fills this (empty) cache from `file` line by line; false when the file is not one whole cache of this version. */
  async #read(file: string): Promise<boolean> {
    const feed = this.#lineReader();
    // A small file (a context of a few thousand files) is read at once on this thread: streaming
    // it took four thread-pool round trips of every build's start. A big one streams, so memory
    // does not grow with the file count.
    const fd = openSync(file, 'r');
    let text: string | undefined;
    try {
      if (fstatSync(fd).size <= READ_AT_ONCE) text = readFileSync(fd, 'utf8');
    } finally {
      closeSync(fd);
    }
    if (text !== undefined) {
      const lines = text.split('\n');
      if (lines.at(-1) === '') lines.pop();
      for (const line of lines) if (!feed(line)) return false;
    } else {
      // node:readline only now; not import(), which a vm.Script (the CLI bundle) cannot do.
      const { createInterface } = createRequire(import.meta.url)('node:readline') as typeof import('node:readline');
      for await (const line of createInterface({ input: createReadStream(file, { highWaterMark: 256 * 1024 }), crlfDelay: Infinity })) if (!feed(line)) return false;
    }
    return feed(undefined);
  }

  /**
   * The parser of the file's lines, in order: false once the file is not one whole cache of this
   * version; `undefined` marks the end (true only when the count line came last).
   */
  #lineReader(): (line: string | undefined) => boolean {
    let lines = 0;
    let ended = false;
    return (line) => {
      if (line === undefined) return ended;
      if (ended) return false;
      if (lines++ === 0) return line === HEADER;
      const e = JSON.parse(line) as unknown;
      if (!Array.isArray(e)) {
        ended = (e as { entries?: unknown } | null)?.entries === lines - 2;
        return ended;
      }
      const [path, size, mtimeMs, ctimeMs, ino, hex] = e as unknown[];
      if (e.length !== 6 || typeof path !== 'string' || typeof size !== 'number' || typeof mtimeMs !== 'number' || typeof ctimeMs !== 'number' || typeof ino !== 'number' || typeof hex !== 'string' || !HEX.test(hex)) return false;
      this.#put(this.#paths.add(path), size, mtimeMs, ctimeMs, ino, hex);
      return true;
    };
  }
}

/** Stat cache files up to this size are read whole (about 2,000 entries). */
const READ_AT_ONCE = 256 * 1024;
const HEADER = JSON.stringify({ version: VERSION });
const HEX = /^[0-9a-f]{64}$/;

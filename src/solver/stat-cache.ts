import type { Stats } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { writeFileAtomic } from '../oci/image-layout.js';
import { isDigest, type Digest } from '../oci/digest.js';

/** What must be unchanged for a remembered checksum to still be trusted (git's index does the same). */
interface Entry {
  readonly size: number;
  readonly mtimeMs: number;
  readonly ctimeMs: number;
  readonly ino: number;
  readonly digest: Digest;
}

/**
 * A file whose mtime or ctime is this close to the moment it was hashed may still be written to
 * within the same (coarse, jiffy-sized) timestamp tick without either changing; such checksums
 * are not remembered ("racy git"). Well above any kernel's timestamp granularity.
 */
const RACY_MS = 250;
const VERSION = 1;
/** Entries per piece of the saved file. */
const SAVE_PIECE = 2000;

/**
 * Remembers the content checksum of files by (path, size, mtime, ctime, inode), so that a
 * rebuild of an unchanged context stats files but reads none of their bytes. Persisted as one
 * JSON file (written atomically; a damaged or foreign file is ignored, never trusted partially).
 * Several processes may share the file: the last writer wins, which only costs re-hashing.
 */
export class StatCache {
  readonly #file: string | undefined;
  readonly #entries: Map<string, Entry>;
  #dirty = false;

  private constructor(file: string | undefined, entries: Map<string, Entry>) {
    this.#file = file;
    this.#entries = entries;
  }

  /** An empty cache that is never saved (for callers that want no persistence). */
  static memory(): StatCache {
    return new StatCache(undefined, new Map());
  }

  /** Loads the cache persisted at `file`; missing or unreadable means empty. */
  static async load(file: string): Promise<StatCache> {
    const entries = new Map<string, Entry>();
    try {
      const data = JSON.parse(await readFile(file, 'utf8')) as { version?: number; entries?: Record<string, [number, number, number, number, string]> };
      if (data.version === VERSION && data.entries && typeof data.entries === 'object') {
        for (const [path, e] of Object.entries(data.entries)) {
          if (!Array.isArray(e) || e.length !== 5 || typeof e[4] !== 'string' || !isDigest(e[4])) continue;
          entries.set(path, { size: e[0], mtimeMs: e[1], ctimeMs: e[2], ino: e[3], digest: e[4] });
        }
      }
    } catch {
      // Missing or damaged: start empty; the worst case is hashing everything once.
    }
    return new StatCache(file, entries);
  }

  /** The checksum recorded for `path` if `st` still matches what it was recorded with. */
  get(path: string, st: Stats): Digest | undefined {
    const e = this.#entries.get(path);
    if (!e || e.size !== st.size || e.mtimeMs !== st.mtimeMs || e.ctimeMs !== st.ctimeMs || e.ino !== st.ino) return undefined;
    return e.digest;
  }

  /** Records `digest` for `path` as of `st` (skipped when the file is too fresh to be trusted). */
  set(path: string, st: Stats, digest: Digest, now = Date.now()): void {
    if (now - Math.max(st.mtimeMs, st.ctimeMs) < RACY_MS) return;
    const old = this.#entries.get(path);
    if (old && old.digest === digest && old.size === st.size && old.mtimeMs === st.mtimeMs && old.ctimeMs === st.ctimeMs && old.ino === st.ino) return;
    this.#entries.set(path, { size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino, digest });
    this.#dirty = true;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Writes the cache back if anything changed. */
  async save(): Promise<void> {
    if (!this.#file || !this.#dirty) return;
    await mkdir(dirname(this.#file), { recursive: true });
    await writeFileAtomic(this.#file, this.#json());
    this.#dirty = false;
  }

  /**
   * The file's JSON in pieces of {@link SAVE_PIECE} entries: a context of 100k files made one
   * object and one string of ~15 MB each at once, the build's peak memory.
   */
  *#json(): Generator<string> {
    yield `{"version":${VERSION},"entries":{`;
    let piece: string[] = [];
    let sep = '';
    for (const [p, e] of this.#entries) {
      piece.push(`${sep}${JSON.stringify(p)}:${JSON.stringify([e.size, e.mtimeMs, e.ctimeMs, e.ino, e.digest])}`);
      sep = ',';
      if (piece.length === SAVE_PIECE) {
        yield piece.join('');
        piece = [];
      }
    }
    yield `${piece.join('')}}}`;
  }
}

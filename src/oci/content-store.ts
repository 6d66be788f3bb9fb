import { closeSync, createReadStream, constants as fsConstants, fstatSync, openSync, readFileSync, statSync } from 'node:fs';
import { mkdir, open, readdir, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Writable, type Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import ssri from 'ssri';
import { BuildError } from '../errors.js';
import { digestFromHex, digestHex, sha256, type Digest } from './digest.js';
import { ThreadPoolSha256 } from './native-fs.js';

/** Identity of a stored blob. */
export interface BlobInfo {
  readonly digest: Digest;
  readonly size: number;
}

/**
 * An in-progress blob. Write the content to `stream` (end it, or let `commit()` end it), then
 * `commit()` publishes it under its digest; `abort()` throws it away. Until `commit()` resolves,
 * the only thing on disk is a temp file in the store's tmpDir: never a partial blob.
 */
export interface BlobWriter {
  readonly stream: Writable;
  /**
   * Waits for all written data, fsyncs, checks `expected` (when given), then renames the temp
   * file to `blobs/sha256/<hex>`; when a blob of that digest and size is stored already, it is
   * kept and the temp file, never synced, is removed. Rejects with BuildError('STORE_CORRUPT') on a digest or size
   * mismatch, and in every failure case removes the temp file.
   */
  commit(): Promise<BlobInfo>;
  /** Destroys the stream and removes the temp file. Safe to call more than once, or after commit. */
  abort(): Promise<void>;
}

/** Prefix of the temp files this module writes, so that {@link cleanupTemp} touches nothing else. */
const TEMP_PREFIX = 'blob-';

const DEFAULT_MAX_BYTES = 16 * 1024 * 1024;

/**
 * Content-addressed blobs in an OCI image layout's `blobs/sha256/` directory. Blobs are
 * immutable and published atomically (temp file + fsync + rename), so readers never see a
 * partial blob, several processes may write the same blob at once, and a crash leaves at most
 * a temp file behind. `tmpDir` must be on the same filesystem as `layoutDir`.
 */
export class ContentStore {
  readonly layoutDir: string;
  readonly tmpDir: string;
  readonly #blobDir: string;

  constructor(layoutDir: string, tmpDir: string) {
    this.layoutDir = layoutDir;
    this.tmpDir = tmpDir;
    this.#blobDir = join(layoutDir, 'blobs', 'sha256');
  }

  /** Where the blob lives (or would live); the file may not exist. */
  path(d: Digest): string {
    return join(this.#blobDir, digestHex(d));
  }

  async has(d: Digest): Promise<boolean> {
    return (await this.stat(d)) !== undefined;
  }

  /** Size of a stored blob, or undefined when it is absent. */
  async stat(d: Digest): Promise<{ size: number } | undefined> {
    try {
      // On this thread: one syscall, asked per layer of every cached step (a thread-pool round trip costs more).
      const st = statSync(this.path(d));
      return { size: st.size };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  /**
   * A stream of the blob's bytes; the caller owns (and must consume or destroy) it. Not
   * verified while streaming: blobs are verified when written. A missing blob surfaces as an
   * ENOENT error on the stream.
   */
  openRead(d: Digest): Readable {
    return createReadStream(this.path(d));
  }

  /**
   * The whole blob, verified against its digest. For manifests and configs, not layers:
   * refuses blobs larger than `maxBytes`. Missing or corrupt → BuildError('STORE_CORRUPT').
   */
  async readBytes(d: Digest, maxBytes = DEFAULT_MAX_BYTES): Promise<Buffer> {
    // Read on this thread: metadata blobs are small, and a build reads several before its first
    // step (each four thread-pool round trips: open, stat, read, close).
    let fd: number;
    try {
      fd = openSync(this.path(d), 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new BuildError('STORE_CORRUPT', `blob ${d} is missing from the store at ${this.layoutDir}`, { cause: e });
      throw e;
    }
    try {
      const { size } = fstatSync(fd);
      if (size > maxBytes) throw new BuildError('STORE_CORRUPT', `blob ${d} is ${size} bytes, more than the ${maxBytes} allowed for metadata`);
      const buf = readFileSync(fd);
      const actual = sha256(buf);
      if (actual !== d) throw new BuildError('STORE_CORRUPT', `blob ${d} in ${this.layoutDir} is corrupt: its content hashes to ${actual}`);
      return buf;
    } finally {
      closeSync(fd);
    }
  }

  /** A verified blob parsed as JSON. Invalid JSON → BuildError('STORE_CORRUPT'). */
  async readJson<T>(d: Digest, maxBytes = DEFAULT_MAX_BYTES): Promise<T> {
    const buf = await this.readBytes(d, maxBytes);
    try {
      return JSON.parse(buf.toString('utf8')) as T;
    } catch (e) {
      throw new BuildError('STORE_CORRUPT', `blob ${d} is not valid JSON`, { cause: e });
    }
  }

  /** Stores `data` (idempotent: an existing blob is left alone) and returns its digest and size. */
  async putBytes(data: string | Uint8Array): Promise<BlobInfo> {
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    const digest = sha256(buf);
    if (await this.has(digest)) return { digest, size: buf.length };
    const w = this.createWriter({ digest, size: buf.length });
    try {
      w.stream.end(buf);
      return await w.commit();
    } catch (e) {
      await w.abort();
      throw e;
    }
  }

  /**
   * Starts a new blob. With `expected`, commit fails (and stores nothing) unless the content
   * matches that digest (and size, when given): use it for anything received from outside.
   */
  createWriter(expected?: { digest: Digest; size?: number }): BlobWriter {
    return new TempBlobWriter(this.tmpDir, this.#blobDir, expected);
  }
}

class TempBlobWriter implements BlobWriter {
  readonly stream: Writable;
  readonly #tmpPath: string;
  readonly #blobDir: string;
  readonly #expected?: { digest: Digest; size?: number };
  readonly #hash = new ThreadPoolSha256();
  #size = 0;
  #fh?: FileHandle;
  #done = false;
  /** Set once all data is written. */
  #digestHex?: string;
  /** The store has this blob already (same digest, same size). */
  #duplicate = false;

  constructor(tmpDir: string, blobDir: string, expected?: { digest: Digest; size?: number }) {
    this.#tmpPath = join(tmpDir, `${TEMP_PREFIX}${process.pid}-${randomBytes(8).toString('hex')}`);
    this.#blobDir = blobDir;
    this.#expected = expected;
    const self = this;
    this.stream = new Writable({
      highWaterMark: 1 << 20,
      construct(cb) {
        mkdir(tmpDir, { recursive: true })
          .then(() => open(self.#tmpPath, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o644))
          .then((fh) => {
            self.#fh = fh;
            cb();
          }, cb);
      },
      // Each chunk is hashed in the thread pool while it is written there (both only read it):
      // on the main thread, sha256 (~2 GB/s) took ~250 ms of a 518 MB layer's commit that the
      // reads and writes could not overlap.
      write(chunk: Buffer, _enc, cb) {
        self.#size += chunk.length;
        Promise.all([writeAll(self.#fh!, [chunk]), self.#hash.update(chunk)]).then(() => cb(), cb);
      },
      writev(chunks, cb) {
        const bufs = chunks.map((c) => c.chunk as Buffer);
        for (const b of bufs) self.#size += b.length;
        Promise.all([writeAll(self.#fh!, bufs), ...bufs.map((b) => self.#hash.update(b))]).then(() => cb(), cb);
      },
      final(cb) {
        self.#hash
          .digestHex()
          .then((hex) => {
            self.#digestHex = hex;
            // A rebuild that makes a layer the store has (--no-cache, or the same files again)
            // keeps the stored blob: syncing this copy only to delete it made a 1 GiB COPY wait
            // ~0.5 s for the disk, and replacing the old one another ~0.2 s to free its blocks.
            // Unsynced, the copy's pages are mostly dropped before they are ever written.
            const stored = statSync(join(self.#blobDir, hex), { throwIfNoEntry: false });
            self.#duplicate = stored !== undefined && stored.isFile() && stored.size === self.#size;
            // fsync before the rename in commit(): a crash must never publish a name whose data isn't on disk.
            return self.#duplicate ? undefined : self.#fh!.sync();
          })
          .then(() => cb(), cb);
      },
      destroy(err, cb) {
        const fh = self.#fh;
        self.#fh = undefined;
        if (!fh) return cb(err);
        fh.close().then(() => cb(err), () => cb(err));
      },
    });
  }

  async commit(): Promise<BlobInfo> {
    if (this.#done) throw new Error('BlobWriter.commit called after commit or abort');
    try {
      if (!this.stream.writableEnded) this.stream.end();
      await finished(this.stream);
      await this.#fh?.close();
      this.#fh = undefined;
      const digest = digestFromHex(this.#digestHex!);
      const size = this.#size;
      this.#verify(digest, size);
      if (this.#duplicate) {
        await unlink(this.#tmpPath);
      } else {
        await mkdir(this.#blobDir, { recursive: true });
        // Renaming onto an identical blob another process just stored is harmless: same name, same bytes.
        await rename(this.#tmpPath, join(this.#blobDir, digestHex(digest)));
      }
      this.#done = true;
      return { digest, size };
    } catch (e) {
      await this.abort();
      throw e;
    }
  }

  async abort(): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    if (!this.stream.destroyed) this.stream.destroy();
    // Wait for destroy() to close the handle before unlinking.
    await finished(this.stream).catch(() => undefined);
    await unlink(this.#tmpPath).catch(() => undefined);
  }

  #verify(digest: Digest, size: number): void {
    const exp = this.#expected;
    if (!exp) return;
    if (exp.size !== undefined && exp.size !== size) {
      throw new BuildError('STORE_CORRUPT', `content for ${exp.digest} has ${size} bytes, expected ${exp.size}`);
    }
    // ssri compares integrity strings (sha256-<base64>) the way npm verifies tarballs.
    const want = ssri.fromHex(digestHex(exp.digest), 'sha256');
    const got = ssri.fromHex(digestHex(digest), 'sha256');
    if (!want.match(got)) {
      throw new BuildError('STORE_CORRUPT', `content digest mismatch: expected ${exp.digest}, got ${digest}`);
    }
  }
}

async function writeAll(fh: FileHandle, bufs: Buffer[]): Promise<void> {
  let rest = bufs;
  while (rest.length > 0) {
    const { bytesWritten } = await fh.writev(rest);
    rest = skipBytes(rest, bytesWritten);
  }
}

function skipBytes(bufs: Buffer[], n: number): Buffer[] {
  const out: Buffer[] = [];
  for (const b of bufs) {
    if (n >= b.length) {
      n -= b.length;
      continue;
    }
    out.push(n > 0 ? b.subarray(n) : b);
    n = 0;
  }
  return out;
}

/**
 * Removes temp files left in `tmpDir` by writers that crashed (only this module's `blob-*`
 * files, and only those not modified for `olderThanMs`, so live writers are left alone).
 * Returns how many were removed.
 */
export async function cleanupTemp(tmpDir: string, olderThanMs: number): Promise<number> {
  let names: string[];
  try {
    names = await readdir(tmpDir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw e;
  }
  const cutoff = Date.now() - olderThanMs;
  let removed = 0;
  for (const name of names) {
    if (!name.startsWith(TEMP_PREFIX)) continue;
    const p = join(tmpDir, name);
    try {
      const st = await stat(p);
      if (st.isFile() && st.mtimeMs <= cutoff) {
        await unlink(p);
        removed++;
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
  return removed;
}

import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { lstat, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Ctx } from '../ctx.js';
import { withByteProgress } from '../events.js';
import type { ContentStore } from '../oci/content-store.js';
import { digestHex } from '../oci/digest.js';
import type { Descriptor } from '../oci/image.js';
import { TarWriter } from '../oci/tar/tar-writer.js';
import { writeLayerTar, type TarSink } from '../oci/layer/diff.js';
import { isatty } from 'node:tty';
import { BuildError } from '../errors.js';
import { STDOUT } from './export-target.js';
import type { TarEntry } from '../oci/tar/tar-entry.js';

/**
 * Streams a tar archive into `destFile` atomically: `fill` adds the members to a TarWriter
 * while the bytes go to a temp file next to `destFile`; only after the archive is complete and
 * fsynced is it renamed onto `destFile`. On error or abort the temp file is removed and any
 * previous `destFile` is untouched. `-` streams it to standard output instead; an existing
 * symlink, pipe, socket or device is streamed into (through the link) as well.
 */
export async function writeArchiveAtomic(destFile: string, ctx: Ctx, fill: (w: ArchiveWriter) => Promise<void>): Promise<void> {
  if (destFile === STDOUT) return writeArchiveToStdout(ctx, fill);
  // A symlink (/dev/stdout), pipe, socket or device is written into, not renamed over: the temp
  // file would go beside the link (into /dev) and the rename would replace the link itself.
  const existing = await lstat(destFile).catch(() => undefined);
  if (existing && (existing.isSymbolicLink() || !(existing.isFile() || existing.isDirectory()))) {
    return writeArchiveToStream(createWriteStream(destFile, { flags: 'w' }), ctx, fill);
  }
  const tmp = join(dirname(destFile), `.${basename(destFile)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const tar = new TarWriter();
  const out = createWriteStream(tmp, { flags: 'wx', mode: 0o644 });
  const writing = pipeline(tar.stream, out, { signal: ctx.signal });
  try {
    const filling = (async () => {
      await fill(new ArchiveWriter(tar, ctx));
      await tar.finish();
    })();
    // If the pipeline fails first (disk full, abort), stop filling; if filling fails, stop the pipeline.
    filling.catch((e: unknown) => tar.destroy(e instanceof Error ? e : new Error(String(e))));
    await Promise.all([filling, writing]);
    const fh = await open(tmp, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, destFile);
  } catch (e) {
    tar.destroy(e instanceof Error ? e : new Error(String(e)));
    await writing.catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}

async function writeArchiveToStdout(ctx: Ctx, fill: (w: ArchiveWriter) => Promise<void>): Promise<void> {
  if (isatty(1)) throw new BuildError('USAGE', 'refusing to write an archive to a terminal (dest=-)', { hint: 'redirect standard output to a file or a pipe' });
  // end: false — standard output belongs to the process, not to this archive.
  return writeArchiveToStream(process.stdout, ctx, fill, { end: false });
}

/** Streams the archive into `out` as it is made: what was written stays written, and the reader sees a truncated archive on failure. */
async function writeArchiveToStream(out: NodeJS.WritableStream, ctx: Ctx, fill: (w: ArchiveWriter) => Promise<void>, opts: { end?: boolean } = {}): Promise<void> {
  const tar = new TarWriter();
  const writing = pipeline(tar.stream, out, { signal: ctx.signal, end: opts.end ?? true });
  const filling = (async () => {
    await fill(new ArchiveWriter(tar, ctx));
    await tar.finish();
  })();
  filling.catch((e: unknown) => tar.destroy(e instanceof Error ? e : new Error(String(e))));
  await Promise.all([filling, writing]);
}

/** Adds layout-style members (`blobs/sha256/<hex>`, small JSON files, directories) with fixed metadata. */
export class ArchiveWriter {
  readonly #tar: TarWriter;
  readonly #signal: AbortSignal;
  readonly #ctx: Ctx;
  constructor(tar: TarWriter, ctx: Ctx) {
    this.#tar = tar;
    this.#signal = ctx.signal;
    this.#ctx = ctx;
  }

  /** Fixed owner and mtime so equal images give byte-identical archives. */
  #entry(path: string, type: 'file' | 'dir', size: number): TarEntry {
    return { path, type, mode: type === 'dir' ? 0o755 : 0o644, uid: 0, gid: 0, size, mtime: 0 };
  }

  async dir(path: string): Promise<void> {
    this.#signal.throwIfAborted();
    await this.#tar.add(this.#entry(path, 'dir', 0));
  }

  async file(path: string, content: string | Buffer): Promise<void> {
    this.#signal.throwIfAborted();
    const buf = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
    await this.#tar.add(this.#entry(path, 'file', buf.length), buf);
  }

  /**
   * Every file under `dir` (a root filesystem, e.g. a read-only overlay mount), as paths
   * relative to it, each after `prefix` (`linux_arm64/`; hardlink targets too), with `mtime`
   * (seconds) instead of their own times when given.
   */
  async tree(dir: string, prefix = '', mtime?: number): Promise<void> {
    this.#signal.throwIfAborted();
    const tar = this.#tar;
    const sink: TarSink =
      prefix || mtime !== undefined
        ? {
            add: (e, body) =>
              tar.add({ ...e, path: prefix + e.path, ...(e.type === 'hardlink' && e.linkname ? { linkname: prefix + e.linkname } : {}), ...(mtime === undefined ? {} : { mtime }) }, body),
          }
        : tar;
    await writeLayerTar(dir, sink, {}, this.#signal);
  }

  /** Streams blob `d` from `blobs` as `blobs/sha256/<hex>`; never buffered whole. */
  async blob(blobs: ContentStore, d: Descriptor): Promise<void> {
    this.#signal.throwIfAborted();
    const st = await blobs.stat(d.digest);
    if (!st) throw new Error(`blob ${d.digest} is missing from the store`);
    const body = withByteProgress(blobs.openRead(d.digest), this.#ctx.events, `export ${d.digest}`, st.size);
    await this.#tar.add(this.#entry(blobPath(d), 'file', st.size), body);
  }
}

/** Archive path of a blob in an OCI layout (and in docker 25+ `docker save` tarballs). */
export function blobPath(d: Descriptor): string {
  return `blobs/sha256/${digestHex(d.digest)}`;
}

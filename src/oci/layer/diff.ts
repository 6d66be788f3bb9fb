import { createReadStream, type BigIntStats } from 'node:fs';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { lgetxattr, llistxattr } from '../native-fs.js';
import type { TarEntry } from '../tar/tar-entry.js';
import type { TarWriter } from '../tar/tar-writer.js';
import { isOverlayXattr } from './overlay-xattrs.js';
import { ReadAhead } from './read-ahead.js';

/** OCI whiteout prefix for a deleted path, and the opaque-directory marker. */
export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_MARKER = '.wh..wh..opq';

/** Where entries go: a TarWriter, or something in front of one (a path prefix). */
export type TarSink = Pick<TarWriter, 'add'>;

export interface DiffOptions {
  /**
   * The xattr marking an opaque directory in `dir` (an overlayfs upperdir or a layer dir):
   * `trusted.overlay.opaque` or `user.overlay.opaque`, as the layer store keeps them. Absent
   * for a plain tree (a merged view), which has none.
   */
  readonly opaqueXattr?: string;
}

/**
 * Writes the OCI layer entries for an overlayfs upperdir (or any tree) `dir` into `out` (without calling
 * `out.finish()`, so the caller may append or finish).
 *
 * Entries come in a deterministic order (depth-first, names sorted bytewise, a directory
 * before its contents), with paths relative to `dir`, no leading `./`. Translations:
 * - a char device 0:0 (overlay whiteout) → empty regular file `.wh.<name>`, mode 0, in the
 *   same directory;
 * - a directory with `opts.opaqueXattr` = y → the directory, then `<dir>/.wh..wh..opq`;
 * - `trusted.overlay.*`, `user.overlay.*` and `security.selinux` xattrs are dropped, all others kept
 *   with raw values;
 * - a second path to an inode already written (nlink > 1) → a hardlink entry to the first;
 * - sockets are skipped (tar can't hold them, as Docker does).
 * Mtimes are truncated to whole seconds so layers stay plain ustar where possible; owners are
 * numeric only (no user/group names: the host's names mean nothing in the image).
 */
export async function writeLayerTar(dir: string, out: TarSink, opts: DiffOptions, signal?: AbortSignal): Promise<void> {
  const links = new Map<string, string>();
  await walk(dir, '', out, links, opts, signal);
}

/** Entries of one directory inspected ahead of the one being written. */
const LOOK_AHEAD = 16;
/** Regular files up to this size are read whole while inspected; larger ones stream when written. */
const READ_WHOLE_MAX = 64 * 1024;
/** Read size for streamed files: fewer, larger chunks mean fewer round trips to the fs and zlib. */
const STREAM_CHUNK = 1024 * 1024;

/** What the walk needs to write one entry, gathered off the ordered path. */
interface Inspected {
  readonly abs: string;
  readonly st: BigIntStats;
  /** A regular file's content, when small enough to read whole (not a whiteout, not a socket). */
  readonly data?: Buffer;
}

/**
 * lstat and small-file reads are latency-bound (a thread-pool round trip each), so the walk
 * runs them for the next {@link LOOK_AHEAD} entries while it writes the current one; the
 * archive order is unchanged. Memory: at most LOOK_AHEAD × READ_WHOLE_MAX per directory level.
 */
async function walk(root: string, rel: string, out: TarSink, links: Map<string, string>, opts: DiffOptions, signal: AbortSignal | undefined): Promise<void> {
  const names = (await readdir(rel ? join(root, rel) : root)).sort(compareBytes);
  const ahead = new ReadAhead(names, LOOK_AHEAD, (name) => inspect(join(root, rel ? `${rel}/${name}` : name), signal));
  try {
    for (const name of names) {
      signal?.throwIfAborted();
      await writeEntry(root, rel, name, await ahead.next(), out, links, opts, signal);
    }
  } finally {
    await ahead.settle();
  }
}

async function inspect(abs: string, signal: AbortSignal | undefined): Promise<Inspected> {
  const st = await lstat(abs, { bigint: true });
  if (st.isFile() && st.size > 0n && st.size <= BigInt(READ_WHOLE_MAX)) return { abs, st, data: await readFile(abs, signal ? { signal } : {}) };
  return { abs, st };
}

async function writeEntry(
  root: string,
  rel: string,
  name: string,
  { abs, st, data }: Inspected,
  out: TarSink,
  links: Map<string, string>,
  opts: DiffOptions,
  signal: AbortSignal | undefined,
): Promise<void> {
  const path = rel ? `${rel}/${name}` : name;
  // Whiteouts first: the kernel shares one inode among them (nlink > 1), so the hardlink
  // check below would otherwise turn every deletion into a link to the first one.
  if (st.isCharacterDevice() && st.rdev === 0n) {
    const wh = rel ? `${rel}/${WHITEOUT_PREFIX}${name}` : `${WHITEOUT_PREFIX}${name}`;
    await out.add({ path: wh, type: 'file', mode: 0, uid: 0, gid: 0, size: 0, mtime: seconds(st) });
    return;
  }
  if (st.isSocket()) return;
  const base = { path, mode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid), mtime: seconds(st) };
  const xattrs = readXattrs(abs);

  if (st.isDirectory()) {
    await out.add({ ...base, type: 'dir', size: 0, ...(xattrs.size ? { xattrs } : {}) });
    if (opts.opaqueXattr && lgetxattr(abs, opts.opaqueXattr)?.toString() === 'y') {
      await out.add({ path: `${path}/${OPAQUE_MARKER}`, type: 'file', mode: 0, uid: 0, gid: 0, size: 0, mtime: seconds(st) });
    }
    await walk(root, path, out, links, opts, signal);
    return;
  }
  if (st.nlink > 1n) {
    const key = `${st.dev}:${st.ino}`;
    const first = links.get(key);
    if (first !== undefined) {
      await out.add({ ...base, type: 'hardlink', size: 0, linkname: first });
      return;
    }
    links.set(key, path);
  }
  const extra = xattrs.size ? { xattrs } : {};
  if (st.isFile()) {
    const size = Number(st.size);
    const entry: TarEntry = { ...base, type: 'file', size, ...extra };
    await out.add(entry, size === 0 ? undefined : (data ?? createReadStream(abs, { signal, highWaterMark: STREAM_CHUNK })));
  } else if (st.isSymbolicLink()) {
    await out.add({ ...base, type: 'symlink', size: 0, linkname: await readlink(abs), ...extra });
  } else if (st.isFIFO()) {
    await out.add({ ...base, type: 'fifo', size: 0, ...extra });
  } else if (st.isCharacterDevice() || st.isBlockDevice()) {
    const [devmajor, devminor] = splitDev(st.rdev);
    await out.add({ ...base, type: st.isCharacterDevice() ? 'char' : 'block', size: 0, devmajor, devminor, ...extra });
  }
}

/**
 * The host's SELinux label: set by the host's policy on every file a build writes, so it differs
 * between machines for the same inputs, and means nothing in a container (the runtime labels
 * the container's files itself). Docker's and containers/storage's layer writers leave it out too.
 */
const SELINUX_LABEL = 'security.selinux';

/** All xattrs except overlayfs' own bookkeeping, which must never leak into an image, and the host's SELinux label. */
function readXattrs(abs: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const name of llistxattr(abs).sort()) {
    if (isOverlayXattr(name) || name === SELINUX_LABEL) continue;
    const v = lgetxattr(abs, name);
    if (v !== null) out.set(name, v);
  }
  return out;
}

function seconds(st: BigIntStats): number {
  return Number(st.mtimeNs / 1_000_000_000n);
}

/** glibc's gnu_dev_major/minor for a 64-bit dev_t. */
export function splitDev(rdev: bigint): [number, number] {
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & ~0xffn);
  return [Number(major), Number(minor)];
}

/** Bytewise (UTF-8) order, so the layer doesn't depend on the locale or UTF-16 quirks. */
function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

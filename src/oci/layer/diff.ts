import { constants as fsConstants } from 'node:fs';
import { open, readdir } from 'node:fs/promises';
import { resolvedInRoot } from '../in-root.js';
import { inspectFiles, lgetxattr, llistxattr, type Inspected } from '../native-fs.js';
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

/** Names per native inspect job: one pool round trip for all of them instead of ~5 each. */
const BATCH = 32;
/** Batches of one directory inspected ahead of the one being written. */
const LOOK_AHEAD = 2;
/** Regular files up to this size are read whole while inspected; larger ones stream when written. */
const READ_WHOLE_MAX = 64 * 1024;
/** Bytes one batch may read whole; files past it stream too. */
const BATCH_BYTES = 1024 * 1024;
/** Read size for streamed files: fewer, larger chunks mean fewer round trips to the fs and the consumer. */
const STREAM_CHUNK = 1024 * 1024;

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const S_IFIFO = 0o010000;

/**
 * Directory at a time: the sorted names of one directory are inspected natively in batches of
 * {@link BATCH} (lstat, xattr presence, symlink target, small files' content: inspectFiles),
 * {@link LOOK_AHEAD} batches ahead of the entry being written; the archive order is unchanged.
 * Nothing outlives its directory but the first path of multi-link inodes (`links`). Memory:
 * the names of the directories on the current path, plus at most (LOOK_AHEAD + 1) ×
 * BATCH_BYTES per directory level.
 */
async function walk(root: string, rel: string, out: TarSink, links: Map<string, string>, opts: DiffOptions, signal: AbortSignal | undefined): Promise<void> {
  // Each directory is resolved inside the tree (no symlink on the way) and held open while it
  // is written: a tree that changes meanwhile (a cache mount another build's RUN writes into)
  // cannot steer the walk, or a read, out of it.
  await resolvedInRoot(
    root,
    rel || '/',
    async (dir) => {
      const names = (await readdir(dir)).sort(compareBytes);
      const batches: string[][] = [];
      for (let i = 0; i < names.length; i += BATCH) batches.push(names.slice(i, i + BATCH));
      const ahead = new ReadAhead(batches, LOOK_AHEAD, (batch) => inspectFiles(dir, batch, READ_WHOLE_MAX, BATCH_BYTES));
      try {
        for (const batch of batches) {
          const inspected = await ahead.next();
          for (let i = 0; i < batch.length; i++) {
            signal?.throwIfAborted();
            await writeEntry(root, dir, rel, batch[i]!, inspected[i]!, out, links, opts, signal);
          }
        }
      } finally {
        await ahead.settle();
      }
    },
    { symlinks: 'none' },
  );
}

async function writeEntry(
  root: string,
  /** `rel`'s directory, as resolved and held by walk. */
  dir: string,
  rel: string,
  name: string,
  st: Inspected,
  out: TarSink,
  links: Map<string, string>,
  opts: DiffOptions,
  signal: AbortSignal | undefined,
): Promise<void> {
  const path = rel ? `${rel}/${name}` : name;
  // A plain name under the held directory: the l* calls below and O_NOFOLLOW never follow it.
  const abs = `${dir}/${name}`;
  const type = st.mode & S_IFMT;
  // Whiteouts first: the kernel shares one inode among them (nlink > 1), so the hardlink
  // check below would otherwise turn every deletion into a link to the first one.
  if (type === S_IFCHR && st.rdev === 0n) {
    const wh = rel ? `${rel}/${WHITEOUT_PREFIX}${name}` : `${WHITEOUT_PREFIX}${name}`;
    await out.add({ path: wh, type: 'file', mode: 0, uid: 0, gid: 0, size: 0, mtime: st.mtime });
    return;
  }
  if (type !== S_IFDIR && type !== S_IFREG && type !== S_IFLNK && type !== S_IFCHR && type !== S_IFBLK && type !== S_IFIFO) return; // sockets
  const base = { path, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: st.mtime };
  const xattrs = st.hasXattrs ? readXattrs(abs) : undefined;
  const extra = xattrs?.size ? { xattrs } : {};

  if (type === S_IFDIR) {
    await out.add({ ...base, type: 'dir', size: 0, ...extra });
    if (opts.opaqueXattr && st.hasXattrs && lgetxattr(abs, opts.opaqueXattr)?.toString() === 'y') {
      await out.add({ path: `${path}/${OPAQUE_MARKER}`, type: 'file', mode: 0, uid: 0, gid: 0, size: 0, mtime: st.mtime });
    }
    await walk(root, path, out, links, opts, signal);
    return;
  }
  if (st.nlink > 1) {
    const key = `${st.dev}:${st.ino}`;
    const first = links.get(key);
    if (first !== undefined) {
      await out.add({ ...base, type: 'hardlink', size: 0, linkname: first });
      return;
    }
    links.set(key, path);
  }
  if (type === S_IFREG) {
    const entry: TarEntry = { ...base, type: 'file', size: st.size, ...extra };
    await out.add(entry, st.size === 0 ? undefined : (st.data ?? (await open(abs, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW)).createReadStream({ signal, highWaterMark: STREAM_CHUNK })));
  } else if (type === S_IFLNK) {
    await out.add({ ...base, type: 'symlink', size: 0, linkname: st.data!.toString('utf8'), ...extra });
  } else if (type === S_IFIFO) {
    await out.add({ ...base, type: 'fifo', size: 0, ...extra });
  } else {
    const [devmajor, devminor] = splitDev(st.rdev);
    await out.add({ ...base, type: type === S_IFCHR ? 'char' : 'block', size: 0, devmajor, devminor, ...extra });
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

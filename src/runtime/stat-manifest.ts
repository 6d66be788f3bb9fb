import { constants, type BigIntStats } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { BuildError } from '../errors.js';
import { lsetxattr, mknod } from '../oci/native-fs.js';
import { cloneEntry, finishDir } from './clone-entry.js';

/**
 * What one path looked like, compact: plain numbers in one fixed shape, so V8 keeps each record
 * in about 100 bytes (times as whole seconds + nanoseconds, since a bigint is a heap object of
 * its own). Inode numbers above 2^53 lose their low bits: that only makes a replaced file look
 * changed, which it is anyway. A directory is the same when its inode number and birth time are.
 */
export interface StatRecord {
  /** st_mode: type and permission bits. */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  mtimeS: number;
  mtimeN: number;
  ctimeS: number;
  ctimeN: number;
  readonly ino: number;
  /** Birth time (statx): ext4 hands a freed inode number straight to the next new file, so a directory deleted and made again often keeps its number. 0 where unknown. */
  readonly btimeS: number;
  readonly btimeN: number;
  readonly nlink: number;
}

/**
 * Upper bound on recorded paths. The manifest is a Map in memory (a file would cost a write
 * and a read of every record per step, for trees that are rarely large): at ~200 bytes per path
 * with its key, 2 million paths are ~400 MB. A bigger tree is refused with a clear error rather
 * than exhausting memory.
 */
export const MAX_MANIFEST_ENTRIES = 2_000_000;

const S_IFMT = constants.S_IFMT;
const S_IFDIR = constants.S_IFDIR;

export function toRecord(st: BigIntStats): StatRecord {
  return {
    mode: Number(st.mode),
    uid: Number(st.uid),
    gid: Number(st.gid),
    size: Number(st.size),
    mtimeS: Number(st.mtimeNs / 1_000_000_000n),
    mtimeN: Number(st.mtimeNs % 1_000_000_000n),
    ctimeS: Number(st.ctimeNs / 1_000_000_000n),
    ctimeN: Number(st.ctimeNs % 1_000_000_000n),
    ino: Number(st.ino),
    btimeS: Number(st.birthtimeNs / 1_000_000_000n),
    btimeN: Number(st.birthtimeNs % 1_000_000_000n),
    nlink: Number(st.nlink),
  };
}

function sameButCtime(a: StatRecord, b: StatRecord): boolean {
  return a.mode === b.mode && a.uid === b.uid && a.gid === b.gid && a.size === b.size && a.mtimeS === b.mtimeS && a.mtimeN === b.mtimeN && a.ino === b.ino && sameInode(a, b) && a.nlink === b.nlink;
}

/** The same inode, not one that reused its number. */
function sameInode(a: StatRecord, b: StatRecord): boolean {
  return a.ino === b.ino && a.btimeS === b.btimeS && a.btimeN === b.btimeN;
}

function same(a: StatRecord, b: StatRecord): boolean {
  return sameButCtime(a, b) && a.ctimeS === b.ctimeS && a.ctimeN === b.ctimeN;
}

const isDir = (r: StatRecord) => (r.mode & S_IFMT) === S_IFDIR;

function child(rel: string, name: string): string {
  return rel ? `${rel}/${name}` : name;
}

function parentOf(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i < 0 ? '' : rel.slice(0, i);
}

/** Options of {@link StatManifest.writeUpper}. */
export interface UpperOptions {
  /** The xattr that marks an opaque directory in the layer store (`LayerStore.overlayXattrPrefix` + 'opaque'). */
  readonly opaqueXattr: string;
  readonly signal?: AbortSignal;
}

/**
 * The stat of every path of a working root filesystem, taken right after it was materialized,
 * so that the changes a step made can later be found by comparing (no file is read for it).
 *
 * Only trees that nothing else writes into while they are walked (no process runs in them any
 * more) are walked; the walk uses lstat and readdir, never follows a link, and reads or copies
 * only what lstat showed to be a regular file.
 */
export class StatManifest {
  readonly #entries: Map<string, StatRecord>;

  private constructor(entries: Map<string, StatRecord>) {
    this.#entries = entries;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(rel: string): StatRecord | undefined {
    return this.#entries.get(rel);
  }

  /**
   * Walks `root` (the root itself is recorded as ''). Paths are joined from readdir names below
   * directories this walk lstat'ed as real directories, and nothing is followed; the tree holds
   * still meanwhile (a RUN's processes are gone when its snapshot is diffed), so no join leaves it.
   */
  static async record(root: string, signal?: AbortSignal, limit = MAX_MANIFEST_ENTRIES): Promise<StatManifest> {
    const entries = new Map<string, StatRecord>();
    const visit = async (rel: string): Promise<void> => {
      signal?.throwIfAborted();
      const st = await lstat(rel ? join(root, rel) : root, { bigint: true });
      if (entries.size >= limit) throw tooBig(limit);
      entries.set(rel, toRecord(st));
      if (!st.isDirectory()) return;
      for (const name of await readdir(rel ? join(root, rel) : root)) await visit(child(rel, name));
    };
    await visit('');
    return new StatManifest(entries);
  }

  /**
   * Takes `rel`'s current stat as its recorded one when only its ctime moved (and its mtime by
   * less than 10 µs): for paths the runtime moved away and back (its own files over
   * /etc/hosts, /dev, mount targets) or whose mtime it restored. A change of anything else
   * stays a change. Returns whether it matched.
   */
  acceptCtime(rel: string, st: BigIntStats): boolean {
    const old = this.#entries.get(rel);
    const cur = toRecord(st);
    // A restored mtime may be off by about a microsecond: Node sets times as a double of seconds, truncated to microseconds.
    if (!old) return false;
    const drift = Math.abs((cur.mtimeS - old.mtimeS) * 1e9 + (cur.mtimeN - old.mtimeN));
    if (drift >= 10_000 || !sameButCtime(old, { ...cur, mtimeS: old.mtimeS, mtimeN: old.mtimeN })) return false;
    old.ctimeS = cur.ctimeS;
    old.ctimeN = cur.ctimeN;
    old.mtimeS = cur.mtimeS;
    old.mtimeN = cur.mtimeN;
    return true;
  }

  /**
   * Writes the changes of `root` since this manifest was taken into the empty directory
   * `upper`, in overlayfs upperdir format (what src/oci/layer/diff.ts turns into a layer), and
   * returns the manifest of `root` as it is now. This manifest is consumed.
   *
   * - new or changed entries (type, mode, owner, size, mtime, ctime, inode) are copied
   *   (regular files reflinked where the filesystem can);
   * - a directory whose own metadata changed is copied without its unchanged entries;
   * - a directory that was replaced (other inode, or was no directory) is copied whole and
   *   marked opaque, as overlay marks a directory created over a whiteout;
   * - a deleted path becomes a whiteout (char device 0:0), unless an ancestor of it is gone or
   *   was replaced too;
   * - hardlinks among copied paths stay hardlinks;
   * - parent directories of changes are created with the parent's metadata, as overlay's copy-up.
   * The root directory's own metadata is not part of a layer (nor of overlay's upperdir).
   */
  async writeUpper(root: string, upper: string, opts: UpperOptions): Promise<StatManifest> {
    const old = this.#entries;
    const next = new Map<string, StatRecord>();
    /** Paths copied whole (new or replaced): no whiteout is needed below them. */
    const fresh = new Set<string>();
    /** Directories made in `upper`, with the stat to finish them with. */
    const made = new Map<string, BigIntStats>();
    const links = new Map<string, string>();
    const signal = opts.signal;
    const src = (rel: string) => join(root, rel);
    const dst = (rel: string) => join(upper, rel);

    const record = (rel: string, st: BigIntStats): StatRecord => {
      if (next.size >= MAX_MANIFEST_ENTRIES) throw tooBig(MAX_MANIFEST_ENTRIES);
      const r = toRecord(st);
      next.set(rel, r);
      return r;
    };
    const ensureDir = async (rel: string): Promise<void> => {
      if (rel === '' || made.has(rel)) return;
      await ensureDir(parentOf(rel));
      const st = await lstat(src(rel), { bigint: true });
      await cloneEntry(src(rel), st, dst(rel));
      made.set(rel, st);
    };
    const copyOne = async (rel: string, st: BigIntStats): Promise<void> => {
      await ensureDir(parentOf(rel));
      await cloneEntry(src(rel), st, dst(rel), links);
    };
    /** Copies `rel` with everything below it, recording it all. */
    const copyWhole = async (rel: string, st: BigIntStats, opaque: boolean): Promise<void> => {
      signal?.throwIfAborted();
      fresh.add(rel);
      if (!st.isDirectory()) return copyOne(rel, st);
      await ensureDir(parentOf(rel));
      await cloneEntry(src(rel), st, dst(rel));
      made.set(rel, st);
      if (opaque) lsetxattr(dst(rel), opts.opaqueXattr, Buffer.from('y'));
      for (const name of await readdir(src(rel))) {
        const c = child(rel, name);
        const cst = await lstat(src(c), { bigint: true });
        old.delete(c);
        record(c, cst);
        await copyWhole(c, cst, false);
      }
    };
    const visitDir = async (rel: string): Promise<void> => {
      for (const name of await readdir(rel ? src(rel) : root)) {
        signal?.throwIfAborted();
        const c = child(rel, name);
        const st = await lstat(src(c), { bigint: true });
        const was = old.get(c);
        if (was) old.delete(c);
        const cur = record(c, st);
        if (!was) {
          await copyWhole(c, st, false);
        } else if ((was.mode & S_IFMT) !== (cur.mode & S_IFMT) || (isDir(cur) && !sameInode(was, cur))) {
          // Overlay marks a directory made where something was deleted opaque; a file simply hides what was there.
          await copyWhole(c, st, isDir(cur));
        } else if (isDir(cur)) {
          if (!same(was, cur)) await ensureDir(c);
          await visitDir(c);
        } else if (!same(was, cur)) {
          await copyOne(c, st);
        }
      }
    };

    const rootSt = await lstat(root, { bigint: true });
    old.delete('');
    record('', rootSt);
    await visitDir('');

    const underFresh = (rel: string): boolean => {
      for (let p = parentOf(rel); ; p = parentOf(p)) {
        if (fresh.has(p)) return true;
        if (p === '') return false;
      }
    };
    for (const rel of old.keys()) {
      signal?.throwIfAborted();
      const parent = parentOf(rel);
      // Only the topmost deleted path needs a whiteout; below a replaced directory, opacity hides it all.
      if (!next.has(parent) || underFresh(rel)) continue;
      await ensureDir(parent);
      mknod(dst(rel), constants.S_IFCHR, 0, 0);
    }
    old.clear();
    // Deepest first: making an entry in a directory moves its mtime.
    for (const [rel, st] of [...made].sort((a, b) => b[0].split('/').length - a[0].split('/').length)) await finishDir(dst(rel), st);
    return new StatManifest(next);
  }
}

function tooBig(limit: number): BuildError {
  return new BuildError('RUNTIME', `the root filesystem has more than ${limit} paths, too many for isolation chroot to track`, {
    hint: 'use --isolation overlay or rootless',
  });
}

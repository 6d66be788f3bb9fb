import { createHash, type Hash } from 'node:crypto';
import { closeSync, constants, createReadStream, lstatSync, openSync, readdirSync, readlinkSync, readSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { canonicalJson } from '../oci/canonical-json.js';
import { digestFromHex, sha256, type Digest } from '../oci/digest.js';
import { lgetxattr, llistxattr } from '../oci/native-fs.js';
import { expandSources, type CopySource } from './ops/copy-sources.js';
import { expandParentsSource } from './ops/parents-sources.js';
import { SelectedFiles } from './selected-files.js';
import type { StatCache } from './stat-cache.js';

/** Files up to this size are hashed from one read; larger ones are streamed (memory stays flat). */
const SMALL_FILE = 1 << 20;

/** The checksum of what one COPY/ADD selects, and of each selected path (for --explain). */
export interface SelectionChecksum {
  readonly digest: Digest;
  /** Path relative to the source root and checksum of that entry (metadata and content), in walk order, each path once. */
  readonly files: SelectedFiles;
}

/**
 * Checksums exactly the files a COPY/ADD of `sel.srcPaths` from `src` would copy, as BuildKit's
 * contenthash does: per entry its relative path, type, permission bits, uid/gid, xattrs, and
 * the content (files) or target (symlinks) — never mtime or atime, so touching a file or a fresh
 * checkout does not invalidate the cache. Paths the dockerignore excludes are invisible.
 * Entry checksums are remembered in `stats` by (path, size, mtime, ctime, inode): a metadata or
 * content change moves ctime, so an unchanged context is only stat'ed, never read.
 *
 * The directory walk uses the synchronous fs calls on purpose: tens of thousands of lstat calls
 * through the thread pool cost several times more than the blocking ones, and each is short.
 */
export async function checksumSelection(
  src: CopySource,
  sel: { readonly srcPaths: readonly string[]; readonly allowWildcard: boolean; readonly parents?: boolean },
  stats: StatCache,
  signal: AbortSignal,
): Promise<SelectionChecksum> {
  const matches = sel.parents
    ? (await Promise.all(sel.srcPaths.map((p) => expandParentsSource(src, p)))).flatMap((f) => f.matches)
    : await expandSources(src, sel.srcPaths, sel.allowWildcard);
  // The digest covers each path once, at its first place: only sources that overlap (one inside
  // another, or the same twice) can meet a path again, and only they pay for a set of the paths seen.
  const out: Selected = { files: new SelectedFiles(), hash: createHash('sha256'), seen: overlapping(matches.map((m) => m.rel)) ? new Set() : undefined };
  // One read buffer for the whole walk: a Buffer per small file cost ~1 KB of RSS per file (malloc churn).
  const scratch = Buffer.allocUnsafe(SMALL_FILE);
  for (const m of matches) await walk(src, m.abs, m.rel, out, stats, scratch, signal);
  return { digest: digestFromHex(out.hash.digest('hex')), files: out.files };
}

/** What a walk adds to: the per-file list, the selection's running digest, and (overlapping sources only) the paths seen. */
interface Selected {
  readonly files: SelectedFiles;
  readonly hash: Hash;
  readonly seen: Set<string> | undefined;
}

/** Whether some source path is another one or lies inside it, so that their walks can meet the same path. */
function overlapping(rels: readonly string[]): boolean {
  const all = new Set<string>();
  for (const rel of rels) {
    if (all.has(rel)) return true;
    all.add(rel);
  }
  if (all.size > 1 && all.has('')) return true;
  return rels.some((rel) => {
    for (let i = rel.indexOf('/'); i !== -1; i = rel.indexOf('/', i + 1)) if (all.has(rel.slice(0, i))) return true;
    return false;
  });
}

async function walk(src: CopySource, abs: string, rel: string, out: Selected, stats: StatCache, scratch: Buffer, signal: AbortSignal): Promise<void> {
  signal.throwIfAborted();
  const ignore = src.ignore;
  const excluded = rel !== '' && !!ignore?.matches(rel);
  const st = lstatSync(abs);
  if (excluded && (!st.isDirectory() || ignore!.canSkipDir(rel))) return;
  if (!excluded && !out.seen?.has(rel)) {
    out.seen?.add(rel);
    const digest = await entryDigest(abs, st, stats, scratch, signal);
    out.files.add(rel, digest);
    out.hash.update(`${rel}\0${digest}\n`);
  }
  if (!st.isDirectory()) return;
  for (const name of readdirSync(abs).sort()) {
    await walk(src, join(abs, name), rel ? `${rel}/${name}` : name, out, stats, scratch, signal);
  }
}

async function entryDigest(abs: string, st: Stats, stats: StatCache, scratch: Buffer, signal: AbortSignal): Promise<Digest> {
  const known = stats.get(abs, st);
  if (known) return known;
  const meta = { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
  let entry: Record<string, unknown>;
  if (st.isFile()) entry = { type: 'file', ...meta, xattrs: xattrs(abs), content: await contentDigest(abs, st.size, scratch, signal) };
  else if (st.isDirectory()) entry = { type: 'dir', ...meta, xattrs: xattrs(abs) };
  else if (st.isSymbolicLink()) entry = { type: 'symlink', uid: st.uid, gid: st.gid, target: readlinkSync(abs) };
  else entry = { type: st.isFIFO() ? 'fifo' : st.isCharacterDevice() ? 'char' : st.isBlockDevice() ? 'block' : 'other', ...meta, rdev: st.rdev };
  const digest = sha256(canonicalJson(entry));
  stats.set(abs, st, digest);
  return digest;
}

/** xattrs as name → base64 value, sorted by name by the canonical JSON. */
function xattrs(abs: string): Record<string, string> | undefined {
  const names = llistxattr(abs);
  if (names.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const n of names) out[n] = lgetxattr(abs, n)?.toString('base64') ?? '';
  return out;
}

async function contentDigest(abs: string, size: number, scratch: Buffer, signal: AbortSignal): Promise<Digest> {
  if (size <= SMALL_FILE) return sha256(readSmall(abs, scratch));
  const h = createHash('sha256');
  for await (const chunk of createReadStream(abs, { signal })) h.update(chunk as Buffer);
  return digestFromHex(h.digest('hex'));
}

/** The whole content of a file of at most `scratch.length` bytes, as a view into `scratch` (valid until the next call). */
function readSmall(abs: string, scratch: Buffer): Buffer {
  const fd = openSync(abs, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    let n = 0;
    for (let got = -1; got !== 0 && n < scratch.length; n += got) got = readSync(fd, scratch, n, scratch.length - n, null);
    return scratch.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

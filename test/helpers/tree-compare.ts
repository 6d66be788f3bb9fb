import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';

/** What two trees must agree on for one path. mtime and inode numbers are deliberately left out. */
export interface TreeNode {
  type: 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket';
  /** Permission bits plus setuid/setgid/sticky (07777). */
  mode: number;
  uid: number;
  gid: number;
  /** Regular files only (0 otherwise). */
  size: number;
  /** Regular files only: hex sha256 of the content. */
  sha256?: string;
  /** Symlinks only: the target as stored. */
  link?: string;
  /** Devices only: `major:minor`. */
  rdev?: string;
}

/**
 * Every path under `dir` (relative, slash-separated, without a leading `./`; the root itself is
 * `.`), with type, mode, owner, size, content hash and symlink target. Never follows symlinks.
 * File contents are streamed, so large files are fine.
 */
export async function snapshotTree(dir: string): Promise<Map<string, TreeNode>> {
  const out = new Map<string, TreeNode>();
  const walk = async (abs: string, rel: string): Promise<void> => {
    const st = await lstat(abs);
    const node: TreeNode = { type: typeOf(st), mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, size: st.isFile() ? st.size : 0 };
    if (st.isFile()) {
      const h = createHash('sha256');
      await pipeline(createReadStream(abs), h);
      node.sha256 = h.digest('hex');
    } else if (st.isSymbolicLink()) {
      node.link = await readlink(abs);
    } else if (st.isCharacterDevice() || st.isBlockDevice()) {
      node.rdev = `${Math.floor(st.rdev / 256)}:${st.rdev % 256}`;
    }
    out.set(rel, node);
    if (st.isDirectory()) {
      for (const name of (await readdir(abs)).sort()) await walk(join(abs, name), rel === '.' ? name : `${rel}/${name}`);
    }
  };
  await walk(dir, '.');
  return out;
}

function typeOf(st: Awaited<ReturnType<typeof lstat>>): TreeNode['type'] {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  return 'socket';
}

/**
 * Human-readable differences between two snapshots, sorted by path: `only in a: p`,
 * `only in b: p`, `p: mode 755 != 700`, … Empty when the trees agree. `ignore` filters paths
 * (e.g. the root's own mode, which depends on how the directory was created).
 */
export function diffTrees(a: ReadonlyMap<string, TreeNode>, b: ReadonlyMap<string, TreeNode>, ignore: (path: string) => boolean = () => false): string[] {
  const out: string[] = [];
  const paths = [...new Set([...a.keys(), ...b.keys()])].sort();
  for (const p of paths) {
    if (ignore(p)) continue;
    const x = a.get(p);
    const y = b.get(p);
    if (!x) {
      out.push(`only in b: ${p}`);
      continue;
    }
    if (!y) {
      out.push(`only in a: ${p}`);
      continue;
    }
    const fmt = (k: keyof TreeNode, v: unknown) => (k === 'mode' && typeof v === 'number' ? v.toString(8) : String(v));
    for (const k of ['type', 'mode', 'uid', 'gid', 'size', 'sha256', 'link', 'rdev'] as const) {
      if (x[k] !== y[k]) out.push(`${p}: ${k} ${fmt(k, x[k])} != ${fmt(k, y[k])}`);
    }
  }
  return out;
}

import { constants, createWriteStream } from 'node:fs';
import { chmod, link, lstat, lutimes, mkdir, readdir, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BuildError } from '../../errors.js';
import { lsetxattr, mknod } from '../native-fs.js';
import { lchownMapped } from '../lchown-mapped.js';
import { atInRoot, mkdirInRoot, resolvedInRoot, type InRootOptions } from '../in-root.js';
import { readTar } from '../tar/tar-reader.js';
import { TarFormatError, type TarEntry } from '../tar/tar-entry.js';
import { OPAQUE_MARKER, WHITEOUT_PREFIX } from './diff.js';
import { isOverlayXattr } from './overlay-xattrs.js';

export interface ApplyOptions {
  /**
   * `overlay`: write an overlay-format directory for use as a lowerdir (whiteouts become
   * char devices 0:0, opaque markers the `opaqueXattr` = y).
   * `flatten`: apply onto an existing root filesystem, deleting what whiteouts name.
   */
  readonly mode: 'overlay' | 'flatten';
  /** With `overlay`: the layer store's opaque xattr (see overlay-xattrs.ts). */
  readonly opaqueXattr?: string;
  /**
   * With `overlay`: `dest` already holds the layers below this one, merged in overlay format
   * (squashing several layers into one upperdir). An opaque marker then also removes what
   * those layers put in the directory, and a directory that replaces a whiteout is made opaque,
   * so what the whiteout hid in the layers under the squash stays hidden.
   */
  readonly stacked?: boolean;
  /** Called before each member is applied; throwing stops the apply (see ExpansionGuard). */
  readonly onEntry?: (entry: TarEntry) => void;
  /** Every entry's mtime (seconds) instead of its own: a local export under SOURCE_DATE_EPOCH. */
  readonly mtime?: number;
  /** Every entry's owner instead of its own: `ADD --chown` of a local archive (BuildKit chowns what it extracts). */
  readonly owner?: { readonly uid: number; readonly gid: number };
}

/**
 * Applies an uncompressed layer tar (callers decompress, see decompress.ts) onto `dest`.
 *
 * Creates files, directories, symlinks, hardlinks, fifos and devices; an existing entry is
 * replaced (a directory is kept when the new entry is a directory too). Owners are set before
 * modes (chown clears setuid) and xattrs after both (chown clears capabilities); directory
 * mtimes are set last, after their contents. Overlay's own xattrs in the archive
 * (`trusted.overlay.*`, `user.overlay.*`) are ignored: a layer must not steer overlayfs.
 *
 * Refuses, with a `TarFormatError` naming the path, any entry that contains `..`, or (overlay
 * mode) would be reached through a symlink; hardlink targets are resolved the same way.
 * Missing parent directories are created (0755, root).
 */
export async function applyLayer(tar: Readable | AsyncIterable<Buffer>, dest: string, opts: ApplyOptions, signal?: AbortSignal): Promise<void> {
  const flatten = opts.mode === 'flatten';
  const opaqueXattr = opts.opaqueXattr;
  if (!flatten && !opaqueXattr) throw new Error('applyLayer: overlay mode needs the store\'s opaqueXattr');
  // Every path below dest is resolved inside it (src/oci/in-root.ts): in flatten mode symlinked
  // parents are followed as in a chroot of dest (docker's chrooted unpack, umoci's securejoin);
  // in overlay mode a layer directory holds only its own entries, so any symlink parent is refused.
  const inDest = { symlinks: flatten ? 'chroot' : 'none' } as const;
  // Paths this layer wrote: an opaque marker in flatten mode removes everything else below it.
  const written = new Set<string>();
  // Parent dirs known to exist as directories, to spare re-checking them for every entry;
  // forgotten whenever something is removed (atInRoot still guards every write).
  const ensured = new Set<string>();
  const dirTimes: Array<[string, number]> = [];

  for await (const member of readTar(tar, signal)) {
    const { body } = member;
    const entry = { ...member.entry, ...(opts.mtime === undefined ? {} : { mtime: opts.mtime }), ...(opts.owner ?? {}) };
    opts.onEntry?.(entry);
    const parts = splitPath(entry.path);
    const rel = parts.join('/');
    const name = parts[parts.length - 1] ?? '';
    const parentParts = parts.slice(0, -1);
    const parentRel = parentParts.join('/');

    if (name.startsWith(WHITEOUT_PREFIX)) {
      await ensureParents(dest, parentParts, written, ensured, inDest);
      if (name === OPAQUE_MARKER) {
        await resolvedInRoot(
          dest,
          parentRel,
          async (dir) => {
            if (flatten || opts.stacked) await clearUnwritten(dir, parentRel, written);
            if (!flatten) lsetxattr(dir, opaqueXattr!, Buffer.from('y'));
          },
          inDest,
        );
        ensured.clear();
      } else if (name.startsWith(`${WHITEOUT_PREFIX}${WHITEOUT_PREFIX}`)) {
        // Other aufs meta files (.wh..wh.plnk, .wh..wh.aufs): not content.
      } else {
        const victim = name.slice(WHITEOUT_PREFIX.length);
        if (victim === '' || victim === '.' || victim === '..') throw new TarFormatError(`layer: invalid whiteout ${entry.path}`);
        const victimRel = parentRel ? `${parentRel}/${victim}` : victim;
        await atInRoot(
          dest,
          victimRel,
          async (abs) => {
            await rm(abs, { recursive: true, force: true });
            ensured.clear();
            if (!flatten) {
              mknod(abs, constants.S_IFCHR | 0o600, 0, 0);
              written.add(victimRel);
            }
          },
          inDest,
        );
      }
      continue;
    }

    if (parts.length === 0) {
      // The layer root ("./"): only its metadata applies, to dest itself.
      if (entry.type !== 'dir') throw new TarFormatError(`layer: root entry ${JSON.stringify(entry.path)} is not a directory`);
      await setMetadata(dest, entry);
      dirTimes.push(['', entry.mtime]);
      continue;
    }

    await ensureParents(dest, parentParts, written, ensured, inDest);
    written.add(rel);
    // The parent is resolved and held open; the entry's own name is never followed.
    await atInRoot(
      dest,
      rel,
      async (abs) => {
        const existing = await lstat(abs).catch(() => undefined);
        if (existing && !(existing.isDirectory() && entry.type === 'dir')) {
          await rm(abs, { recursive: true, force: true });
          ensured.clear();
        }
        switch (entry.type) {
          case 'dir':
            if (!existing?.isDirectory()) await mkdir(abs, { mode: 0o700 });
            await setMetadata(abs, entry);
            if (opts.stacked && existing?.isCharacterDevice() && existing.rdev === 0) lsetxattr(abs, opaqueXattr!, Buffer.from('y'));
            dirTimes.push([rel, entry.mtime]);
            return;
          case 'file':
            // O_EXCL: a link planted meanwhile is never written through.
            await pipeline(body, createWriteStream(abs, { flags: 'wx', mode: 0o600 }), signal ? { signal } : {});
            break;
          case 'symlink':
            // The target is data, resolved in the container at run time; we never follow it.
            await symlink(entry.linkname ?? '', abs);
            break;
          case 'hardlink': {
            const target = splitPath(entry.linkname ?? '');
            if (target.length === 0) throw new TarFormatError(`layer: hardlink ${entry.path} has no target`);
            // Its target's parents resolve as the entry's own do: in flatten mode as in a chroot
            // of dest (docker's chrooted untar links through an image's `var/run -> /run`; BuildKit
            // testDockerfileAddArchiveThroughAbsoluteSymlink); in overlay mode no symlink at all.
            await atInRoot(dest, target.join('/'), async (targetAbs) => {
              const tst = await lstat(targetAbs).catch(() => undefined);
              if (!tst) throw new TarFormatError(`layer: hardlink ${entry.path} points to ${entry.linkname}, which is not in the layer or below it`);
              if (tst.isDirectory()) throw new TarFormatError(`layer: hardlink ${entry.path} points to directory ${entry.linkname}`);
              await link(targetAbs, abs); // linkat without AT_SYMLINK_FOLLOW: a symlink target is linked itself
            }, inDest).catch((e: NodeJS.ErrnoException) => {
              if (e.code === 'ELOOP') throw new TarFormatError(`layer: hardlink target ${entry.linkname} goes through a symlink`);
              if (e.code === 'ENOENT' || e.code === 'ENOTDIR') throw new TarFormatError(`layer: hardlink ${entry.path} points to ${entry.linkname}, which is not in the layer or below it`);
              throw e;
            });
            return; // shares the target's inode and metadata
          }
          case 'fifo':
            mknod(abs, constants.S_IFIFO | 0o600, 0, 0);
            break;
          case 'char':
          case 'block':
            mknod(abs, (entry.type === 'char' ? constants.S_IFCHR : constants.S_IFBLK) | 0o600, entry.devmajor ?? 0, entry.devminor ?? 0);
            break;
          default: {
            const never: never = entry.type;
            throw new TarFormatError(`layer: unsupported entry type ${String(never)}`);
          }
        }
        await setMetadata(abs, entry);
        const t = entry.mtime;
        await lutimes(abs, t, t);
      },
      inDest,
    );
  }

  // Deepest first is not needed: nothing writes into these directories any more.
  for (const [rel, t] of dirTimes) {
    signal?.throwIfAborted();
    await atInRoot(dest, rel, (abs) => lutimes(abs, t, t), inDest);
  }
}

/** Owner, then mode (chown clears setuid/setgid), then xattrs (chown clears capabilities). */
async function setMetadata(abs: string, entry: TarEntry): Promise<void> {
  await lchownMapped(abs, entry.uid, entry.gid);
  if (entry.type !== 'symlink') await chmod(abs, entry.mode & 0o7777);
  if (!entry.xattrs) return;
  for (const [name, value] of entry.xattrs) {
    if (isOverlayXattr(name)) continue;
    try {
      lsetxattr(abs, name, value);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // user.* xattrs are not allowed on symlinks and devices (EPERM); some filesystems lack
      // xattr namespaces (ENOTSUP). Docker skips these the same way.
      if ((code === 'EPERM' && entry.type !== 'file' && entry.type !== 'dir' && name.startsWith('user.')) || code === 'ENOTSUP') continue;
      throw e;
    }
  }
}

/**
 * Splits an archive path into safe components: `.` and empty parts dropped, absolute paths
 * and `..` refused, since either could write outside dest.
 */
function splitPath(p: string): string[] {
  // Absolute member names are taken as relative to dest, as docker and GNU tar do.
  const parts = p.split('/').filter((c) => c !== '' && c !== '.');
  if (parts.includes('..')) throw new TarFormatError(`layer: path ${JSON.stringify(p)} escapes the destination ('..')`);
  if (parts.some((c) => c.includes('\0'))) throw new TarFormatError(`layer: path ${JSON.stringify(p)} contains NUL`);
  return parts;
}

/**
 * Makes sure every parent of an entry is a directory under dest, creating missing ones (0755,
 * root) with mkdirInRoot. A symlink among them is followed inside dest in flatten mode
 * (merged-usr `lib -> usr/lib`; a dangling one gets its target made there, as umoci's
 * securejoin + MkdirAll) and refused in overlay mode, where a layer dir holds only its own entries.
 */
async function ensureParents(dest: string, parents: readonly string[], written: Set<string>, ensured: Set<string>, inDest: InRootOptions): Promise<void> {
  const rel = parents.join('/');
  if (rel === '' || ensured.has(rel)) return;
  await mkdirInRoot(dest, rel, 0o755, undefined, { ...inDest, onCreated: (p) => written.add(p) }).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ELOOP') throw new TarFormatError(`layer: refusing to write through symlink in ${rel}`);
    if (e instanceof BuildError) throw new TarFormatError(`layer: ${e.message}, but the layer has entries under it`);
    throw e;
  });
  for (let i = 1; i <= parents.length; i++) ensured.add(parents.slice(0, i).join('/'));
}

/**
 * Flatten-mode opaque dir: removes what lower layers put below it, keeps this layer's entries.
 * `abs` is a resolved directory; below it only names from readdir are used, and only a real
 * directory (lstat) is descended into.
 */
async function clearUnwritten(abs: string, rel: string, written: ReadonlySet<string>): Promise<void> {
  for (const name of await readdir(abs)) {
    const childRel = rel ? `${rel}/${name}` : name;
    const childAbs = join(abs, name);
    if (!written.has(childRel)) {
      await rm(childAbs, { recursive: true, force: true });
      continue;
    }
    const st = await lstat(childAbs);
    if (st.isDirectory()) await clearUnwritten(childAbs, childRel, written);
  }
}

import { copyFile, lchown, link, lstat, lutimes, mkdir, readdir, readlink, rm, symlink, chmod } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join } from 'node:path';
import { llistxattr, lgetxattr, lsetxattr, mknod } from '../../oci/native-fs.js';
import type { PatternMatcher } from '../pattern-matcher.js';

export interface Owner {
  readonly uid: number;
  readonly gid: number;
}

/** How copied entries are owned and moded. */
export interface CopyAttrs {
  /** --chown, else undefined: keep the source's owner (or root for the context; see `fromContext`). */
  readonly owner?: Owner;
  /** --chmod permission bits applied to every copied file and directory. */
  readonly mode?: number;
  /** Context files always become root-owned unless --chown, as docker does. */
  readonly fromContext: boolean;
  /** dockerignore of the context; paths are matched relative to the context root. */
  readonly ignore?: PatternMatcher;
}

/**
 * Copies `src` (any file type) to `dst`, recursing into directories. Keeps modes, mtimes,
 * xattrs (but overlay's own), symlinks as symlinks, and hardlinks within the copied set. An
 * existing `dst` of another type is replaced; an existing directory is merged into.
 */
export class TreeCopier {
  readonly #attrs: CopyAttrs;
  readonly #signal: AbortSignal;
  /** dev:ino → first destination, to recreate hardlinks. */
  readonly #links = new Map<string, string>();

  constructor(attrs: CopyAttrs, signal: AbortSignal) {
    this.#attrs = attrs;
    this.#signal = signal;
  }

  async copy(src: string, rel: string, dst: string): Promise<void> {
    this.#signal.throwIfAborted();
    const st = await lstat(src);
    const existing = await lstat(dst).catch(() => undefined);
    if (existing && (!existing.isDirectory() || !st.isDirectory())) await rm(dst, { recursive: true, force: true });

    if (st.isDirectory()) {
      if (!existing?.isDirectory()) await mkdir(dst);
      for (const name of (await readdir(src)).sort()) {
        const childRel = rel ? `${rel}/${name}` : name;
        if (this.#attrs.ignore?.matches(childRel) && !(await this.#mayReinclude(join(src, name), childRel))) continue;
        await this.copy(join(src, name), childRel, join(dst, name));
      }
      await this.#finish(src, dst, st);
      return;
    }
    const key = `${st.dev}:${st.ino}`;
    const first = st.nlink > 1 && !st.isDirectory() ? this.#links.get(key) : undefined;
    if (first) {
      await link(first, dst);
      return;
    }
    if (st.isFile()) await copyFile(src, dst);
    else if (st.isSymbolicLink()) await symlink(await readlink(src), dst);
    else mknod(dst, st.mode, major(st.rdev), minor(st.rdev)); // fifo, char or block device
    if (st.nlink > 1) this.#links.set(key, dst);
    await this.#finish(src, dst, st);
  }

  /** An ignored directory is still walked when `!` patterns may re-include something below it. */
  async #mayReinclude(abs: string, rel: string): Promise<boolean> {
    const st = await lstat(abs);
    return st.isDirectory() && !!this.#attrs.ignore?.hasExclusions;
  }

  async #finish(src: string, dst: string, st: Stats): Promise<void> {
    const owner = this.#attrs.owner ?? (this.#attrs.fromContext ? { uid: 0, gid: 0 } : { uid: st.uid, gid: st.gid });
    await lchown(dst, owner.uid, owner.gid);
    if (!st.isSymbolicLink()) {
      // chown clears setuid/setgid, so the mode goes after it.
      await chmod(dst, this.#attrs.mode ?? st.mode & 0o7777);
      for (const name of llistxattr(src)) {
        if (name.startsWith('trusted.overlay.')) continue;
        const value = lgetxattr(src, name);
        if (value) lsetxattr(dst, name, value);
      }
    }
    await lutimes(dst, st.atime, st.mtime);
  }
}

// glibc's dev_t encoding, for device numbers below 2^32 (all that lstat gives as a safe number).
function major(dev: number): number {
  return (dev >>> 8) & 0xfff;
}
function minor(dev: number): number {
  return (dev & 0xff) | ((dev >>> 12) & 0xfff00);
}

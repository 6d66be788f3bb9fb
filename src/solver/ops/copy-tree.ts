import { copyFile, lchown, link, lstat, lutimes, mkdir, readdir, readlink, rm, symlink, chmod } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join } from 'node:path';
import { llistxattr, lgetxattr, lsetxattr, mknod } from '../../oci/native-fs.js';
import type { PatternMatcher } from '../pattern-matcher.js';
import type { ModeFn } from '../chmod-spec.js';

export interface Owner {
  readonly uid: number;
  readonly gid: number;
}

/** How copied entries are owned and moded. */
export interface CopyAttrs {
  /** --chown, else undefined: keep the source's owner (or root for the context; see `fromContext`). */
  readonly owner?: Owner;
  /** --chmod: the new permission bits of every copied file and directory, from its own. */
  readonly mode?: ModeFn;
  /** Context files always become root-owned unless --chown, as docker does. */
  readonly fromContext: boolean;
  /** dockerignore of the context; paths are matched relative to the context root. */
  readonly ignore?: PatternMatcher;
  /** COPY --exclude, matched against paths relative to the copied source (see `copy`). */
  readonly exclude?: PatternMatcher;
}

/**
 * Copies `src` (any file type) to `dst`, recursing into directories. Keeps modes, mtimes,
 * xattrs (but overlay's own), symlinks as symlinks, and hardlinks within the copied set. An
 * existing `dst` of another type is replaced; an existing directory is merged into.
 * Paths the dockerignore excludes are skipped; an excluded directory is still walked when a `!`
 * pattern may re-include something below it, and then exists in the result only if something
 * below it was re-included (as BuildKit's context transfer sends parents of included paths only).
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

  /**
   * Copies `src` (whose path relative to the source root is `rel`, '' for the root itself) to
   * `dst`. Returns false when nothing was copied because the dockerignore excludes it all.
   * `excludeRel` is `src`'s path as --exclude patterns see it: relative to the directory being
   * copied ('' = never excluded itself, e.g. the root of a directory source).
   */
  copy(src: string, rel: string, dst: string, excludeRel = ''): Promise<boolean> {
    return this.#copy(src, rel, dst, undefined, excludeRel);
  }

  /** `ensureParent` creates the (excluded, so not yet created) parent directory on first use. */
  async #copy(src: string, rel: string, dst: string, ensureParent: (() => Promise<void>) | undefined, xrel: string): Promise<boolean> {
    this.#signal.throwIfAborted();
    const { ignore, exclude } = this.#attrs;
    const byIgnore = rel !== '' && !!ignore?.matches(rel);
    const byExclude = xrel !== '' && !!exclude?.matches(xrel);
    const excluded = byIgnore || byExclude;
    const st = await lstat(src);
    if (excluded && (!st.isDirectory() || (byIgnore && ignore!.canSkipDir(rel)) || (byExclude && exclude!.canSkipDir(xrel)))) return false;
    // An excluded directory creates its parent only once something below it is copied.
    if (!excluded) await ensureParent?.();
    const existing = await lstat(dst).catch(() => undefined);

    if (st.isDirectory()) {
      let ready = false;
      const ensureSelf = async (): Promise<void> => {
        if (ready) return;
        ready = true;
        await ensureParent?.();
        if (existing && !existing.isDirectory()) await rm(dst, { recursive: true, force: true });
        if (!existing?.isDirectory()) await mkdir(dst);
      };
      if (!excluded) await ensureSelf();
      for (const name of (await readdir(src)).sort()) {
        await this.#copy(join(src, name), rel ? `${rel}/${name}` : name, join(dst, name), ensureSelf, xrel ? `${xrel}/${name}` : name);
      }
      if (!ready) return false;
      await this.#finish(src, dst, st);
      return true;
    }
    if (existing) await rm(dst, { recursive: true, force: true });
    const key = `${st.dev}:${st.ino}`;
    const first = st.nlink > 1 ? this.#links.get(key) : undefined;
    if (first) {
      await link(first, dst);
      return true;
    }
    if (st.isFile()) await copyFile(src, dst);
    else if (st.isSymbolicLink()) await symlink(await readlink(src), dst);
    else mknod(dst, st.mode, major(st.rdev), minor(st.rdev)); // fifo, char or block device
    if (st.nlink > 1) this.#links.set(key, dst);
    await this.#finish(src, dst, st);
    return true;
  }

  async #finish(src: string, dst: string, st: Stats): Promise<void> {
    const owner = this.#attrs.owner ?? (this.#attrs.fromContext ? { uid: 0, gid: 0 } : { uid: st.uid, gid: st.gid });
    await lchown(dst, owner.uid, owner.gid);
    if (!st.isSymbolicLink()) {
      // chown clears setuid/setgid, so the mode goes after it.
      await chmod(dst, this.#attrs.mode ? this.#attrs.mode(st.mode & 0o7777, st.isDirectory()) : st.mode & 0o7777);
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

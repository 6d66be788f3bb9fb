import { lstat, readdir } from 'node:fs/promises';
import { posix } from 'node:path';
import { BuildError } from '../../errors.js';
import { atInRoot, resolveInRoot, resolvedInRoot } from '../../oci/in-root.js';
import { filepathMatch, type PatternMatcher } from '../pattern-matcher.js';

/** Where COPY reads from: the build context (dockerignore applies) or another stage's rootfs. */
export interface CopySource {
  readonly root: string;
  readonly kind: 'context' | 'rootfs';
  readonly ignore?: PatternMatcher;
}

/** One selected source: `rel` is its path relative to the source root (for ignore matching). */
export interface SourceMatch {
  readonly rel: string;
  readonly abs: string;
}

export const GLOB_META = /[*?[\\]/;

/**
 * Expands COPY/ADD source arguments to existing paths, in order. A path that leaves the context
 * (`../x`, or a symlink pointing outside) is an error, not silently clamped, so a user learns the
 * file was never sent; symlinks inside resolve as inside a chroot of the context or rootfs.
 */
export async function expandSources(src: CopySource, srcPaths: readonly string[], allowWildcard: boolean): Promise<SourceMatch[]> {
  const out: SourceMatch[] = [];
  // As BuildKit (AllowEmptyWildcard): a wildcard matching nothing is fine when another source copies something.
  let emptyWildcard: string | undefined;
  for (const raw of srcPaths) {
    const clean = posix.normalize(raw.replace(/^\/+/, '') || '.');
    if (clean === '..' || clean.startsWith('../')) {
      throw new BuildError('COPY_SOURCE_ESCAPES', `COPY source ${JSON.stringify(raw)} is outside the build context`, {
        hint: 'only files inside the context directory can be copied; move the file into the context or pick a parent directory as context',
      });
    }
    const rel = clean === '.' ? '' : clean.replace(/\/$/, '');
    if (allowWildcard && GLOB_META.test(rel)) {
      const found = await glob(src, rel);
      if (found.length === 0) emptyWildcard ??= raw;
      for (const r of found) out.push({ rel: r, abs: await resolveSource(src, r, raw) });
    } else {
      if (rel && !(await visible(src, rel))) throw notFound(raw);
      out.push({ rel, abs: await resolveSource(src, rel, raw) });
    }
  }
  if (out.length === 0 && emptyWildcard !== undefined) throw notFound(emptyWildcard);
  return out;
}

export function notFound(raw: string): BuildError {
  return new BuildError('COPY_SOURCE_MISSING', `failed to compute cache key: "/${raw.replace(/^\/+/, '')}": not found`, {
    hint: 'check the path, and that .dockerignore does not exclude it',
  });
}

/**
 * The host path of a selected source, resolved inside its root (src/oci/in-root.ts): a
 * symlink on the way or at the end is followed as in a chroot of the context or rootfs, so
 * nothing outside is ever read. A context symlink whose target is not in the context is the
 * user's mistake and says so.
 */
export async function resolveSource(src: CopySource, rel: string, raw: string): Promise<string> {
  try {
    return await resolveInRoot(src.root, rel);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR' && code !== 'ELOOP') throw e;
  }
  const isLink = await atInRoot(src.root, rel, async (h) => (await lstat(h)).isSymbolicLink()).catch(() => false);
  if (src.kind === 'context' && isLink) {
    throw new BuildError('COPY_SOURCE_ESCAPES', `COPY source ${JSON.stringify(raw)} is a symlink that points outside the build context`, {
      hint: 'a build only sees files inside its context; copy the target into the context instead',
    });
  }
  throw notFound(raw);
}

/**
 * Go's filepath.Glob over the source tree, one path component at a time; ignored paths are
 * invisible. Directories on the way resolve as inside a chroot of the source root: a symlinked
 * `/etc -> /usr/etc` is read in the rootfs or context, never on the host.
 */
export async function glob(src: CopySource, pattern: string): Promise<string[]> {
  let current = [''];
  for (const part of pattern.split('/')) {
    const next: string[] = [];
    for (const dir of current) {
      if (!GLOB_META.test(part)) {
        const rel = dir ? `${dir}/${part}` : part;
        if (await atInRoot(src.root, rel, (h) => lstat(h)).catch(() => undefined)) next.push(rel);
        continue;
      }
      const names = await resolvedInRoot(src.root, dir, (h) => readdir(h)).catch(() => [] as string[]);
      for (const name of names.sort()) if (filepathMatch(part, name)) next.push(dir ? `${dir}/${name}` : name);
    }
    current = next;
  }
  const out: string[] = [];
  for (const rel of current) if (await visible(src, rel)) out.push(rel);
  return out;
}

/**
 * Whether `rel` is in the context BuildKit would transfer: not excluded, or an excluded
 * directory that a `!` pattern re-includes something below (it is sent as that path's parent).
 */
export async function visible(src: CopySource, rel: string): Promise<boolean> {
  const ignore = src.ignore;
  if (!ignore?.matches(rel)) return true;
  if (ignore.canSkipDir(rel)) return false;
  const walk = async (dir: string): Promise<boolean> => {
    const names = await resolvedInRoot(src.root, dir, (h) => readdir(h)).catch(() => undefined);
    if (!names) return false; // not a directory
    for (const name of names) {
      const child = `${dir}/${name}`;
      if (!ignore.matches(child)) return true;
      if (!ignore.canSkipDir(child) && (await walk(child))) return true;
    }
    return false;
  };
  return walk(rel);
}

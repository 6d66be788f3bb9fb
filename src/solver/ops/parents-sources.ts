import { lstat, readdir } from 'node:fs/promises';
import { posix } from 'node:path';
import { resolvedInRoot } from '../../oci/in-root.js';
import { PatternMatcher } from '../pattern-matcher.js';
import { GLOB_META, glob, notFound, resolveSource, visible, type CopySource } from './copy-sources.js';

/** One path a `COPY --parents` source selects; `kept` is the part recreated under the destination. */
export interface ParentsMatch {
  readonly rel: string;
  readonly abs: string;
  readonly kept: string;
}

/**
 * Expands one `COPY --parents` source as BuildKit's convert_copy.go does: the text before the
 * first `/./` is the copy's source directory (a wildcard there may match several, or none), the
 * rest an include pattern below it (`**` allowed) whose matches keep their path relative to that
 * directory; without a pivot the source is `/` and the whole path is kept. Only a source without
 * any wildcard must exist (BuildKit's RequiredPaths); otherwise matching nothing copies nothing
 * (AllowEmptyWildcard). A matched directory is taken whole. `copiesDir` says a source directory
 * exists: BuildKit then copies its (maybe filtered-out) contents, which creates the destination.
 */
export async function expandParentsSource(src: CopySource, raw: string): Promise<{ matches: ParentsMatch[]; copiesDir: boolean }> {
  const cut = raw.indexOf('/./');
  const parent = cut < 0 ? '' : clean(raw.slice(0, cut));
  const pattern = clean(cut < 0 ? raw : raw.slice(cut + 3));
  const wildcards = GLOB_META.test(parent) || GLOB_META.test(pattern);
  const bases = GLOB_META.test(parent) ? await glob(src, parent) : [parent];
  const out: ParentsMatch[] = [];
  let copiesDir = false;
  for (const base of bases) {
    const join = (p: string): string => (base && p ? `${base}/${p}` : base || p);
    if (!GLOB_META.test(pattern)) {
      const rel = join(pattern);
      const present = await resolvedInRoot(src.root, rel, (h) => lstat(h)).then(() => true, () => false);
      if (present && (await visible(src, rel))) out.push({ rel, abs: await resolveSource(src, rel, raw), kept: pattern });
      else if (!wildcards) throw notFound(raw);
      continue;
    }
    // Walk from the pattern's literal leading directories, not the whole source tree.
    const parts = pattern.split('/');
    const fixed = parts.slice(0, parts.findIndex((p) => GLOB_META.test(p))).join('/');
    copiesDir ||= await resolvedInRoot(src.root, base, (h) => lstat(h)).then((st) => st.isDirectory(), () => false);
    const matcher = PatternMatcher.compile([pattern]);
    const walk = async (dir: string): Promise<void> => {
      const names = await resolvedInRoot(src.root, join(dir), (h) => readdir(h, { withFileTypes: true })).catch(() => []);
      for (const d of names.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
        const kept = dir ? `${dir}/${d.name}` : d.name;
        const rel = join(kept);
        if (!(await visible(src, rel))) continue;
        if (matcher.matches(kept)) out.push({ rel, abs: await resolveSource(src, rel, raw), kept });
        else if (d.isDirectory()) await walk(kept);
      }
    };
    await walk(fixed);
  }
  return { matches: out, copiesDir };
}

function clean(p: string): string {
  const c = posix.normalize(`/${p}`).replace(/^\/+/, '').replace(/\/$/, '');
  return c === '.' ? '' : c;
}

import { cleanPath, PatternMatcher } from '../solver/pattern-matcher.js';

/**
 * CopyIgnoredFile: whether a COPY/ADD source from the build context is one .dockerignore
 * excludes (BuildKit dockerfile2llb/validations.go validateCopySourcePath). A .dockerignore
 * with `!` exceptions is never judged (what an exception re-includes can't be told statically),
 * and the context root (`.`, `/`) only counts as excluded by `*`, `**` or `**\/*`.
 */
export class CopyIgnoredCheck {
  readonly #matcher: PatternMatcher;
  readonly #rootIgnored: boolean;

  private constructor(matcher: PatternMatcher, patterns: readonly string[]) {
    this.#matcher = matcher;
    this.#rootIgnored = patterns.some((p) => ['*', '**', '**/*'].includes(p.trim()));
  }

  /** The check for these .dockerignore patterns; undefined when there is nothing to judge. */
  static of(patterns: readonly string[]): CopyIgnoredCheck | undefined {
    if (patterns.length === 0) return undefined;
    let matcher: PatternMatcher;
    try {
      matcher = PatternMatcher.compile(patterns);
    } catch {
      return undefined; // a bad pattern fails the context transfer, with its own error
    }
    return matcher.hasExclusions ? undefined : new CopyIgnoredCheck(matcher, patterns);
  }

  /** The source as BuildKit names it in the warning when it is excluded, else undefined. */
  excluded(source: string): string | undefined {
    const src = source === '' ? '.' : cleanPath(source);
    if ((src === '.' || src === '/') && !this.#rootIgnored) return undefined;
    try {
      return this.#matcher.matches(src) ? src : undefined;
    } catch {
      return undefined;
    }
  }
}

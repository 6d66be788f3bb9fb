import { posix } from 'node:path';

/**
 * .dockerignore matching with moby/patternmatcher semantics (what BuildKit uses for the build
 * context) and Go's filepath.Match (COPY wildcards). Paths use `/` and are relative to the root.
 */

/** Go's filepath.ErrBadPattern text. */
export const BAD_PATTERN = 'syntax error in pattern';

export class PatternError extends Error {
  override readonly name = 'PatternError';
}

interface Pattern {
  readonly exclusion: boolean;
  /** Cleaned pattern without the `!`. */
  readonly text: string;
  readonly dirs: readonly string[];
  /** Lazily built: a RegExp, or the compile error (reported on every match, as upstream does). */
  compiled?: ((path: string) => boolean) | PatternError;
}

export class PatternMatcher {
  readonly #patterns: readonly Pattern[];
  /** True when some pattern starts with `!` (something excluded may be re-included). */
  readonly hasExclusions: boolean;

  private constructor(patterns: Pattern[]) {
    this.#patterns = patterns;
    this.hasExclusions = patterns.some((p) => p.exclusion);
  }

  /**
   * patternmatcher.New: trims, drops empty patterns, cleans with Go's filepath.Clean, checks the
   * syntax with filepath.Match. Throws PatternError (`illegal exclusion pattern: "!"`,
   * `syntax error in pattern`).
   */
  static compile(patterns: readonly string[]): PatternMatcher {
    const out: Pattern[] = [];
    for (const raw of patterns) {
      let p = raw.trim();
      if (p === '') continue;
      p = cleanPath(p);
      let exclusion = false;
      if (p.startsWith('!')) {
        if (p.length === 1) throw new PatternError('illegal exclusion pattern: "!"');
        exclusion = true;
        p = p.slice(1);
      }
      filepathMatch(p, '.'); // syntax check; throws PatternError
      out.push({ exclusion, text: p, dirs: p.split('/') });
    }
    return new PatternMatcher(out);
  }

  /**
   * MatchesOrParentMatches: whether `path` (as given, not cleaned) is excluded. A pattern matches
   * the path or any parent prefix; exclusions apply only to matched paths; the last applicable
   * pattern wins. Throws PatternError for patterns whose regexp is invalid.
   */
  matches(path: string): boolean {
    let matched = false;
    const parent = goDir(path);
    const parentDirs = parent.split('/');
    for (const p of this.#patterns) {
      if (p.exclusion !== matched) continue;
      let match = matchPattern(p, path);
      if (!match && parent !== '.') {
        for (let i = 0; i < parentDirs.length && !match; i++) {
          try {
            match = matchPattern(p, parentDirs.slice(0, i + 1).join('/'));
          } catch {
            match = false; // upstream ignores errors on parent prefixes
          }
        }
      }
      if (match) matched = !p.exclusion;
    }
    return matched;
  }

  /**
   * Whether a walk may skip directory `dir` entirely: it is excluded and no `!` pattern could
   * re-include anything below it. Conservative: `**` in an exclusion always keeps the walk going.
   */
  canSkipDir(dir: string): boolean {
    if (!this.matches(dir)) return false;
    if (!this.hasExclusions) return true;
    const parts = dir.split('/');
    for (const p of this.#patterns) {
      if (!p.exclusion) continue;
      if (p.text.includes('**')) return false;
      if (p.dirs.length <= parts.length) continue;
      let prefixOk = true;
      for (let i = 0; i < parts.length && prefixOk; i++) {
        try {
          prefixOk = filepathMatch(p.dirs[i]!, parts[i]!);
        } catch {
          prefixOk = true;
        }
      }
      if (prefixOk) return false;
    }
    return true;
  }
}

function matchPattern(p: Pattern, path: string): boolean {
  p.compiled ??= compilePattern(p.text);
  if (p.compiled instanceof PatternError) throw p.compiled;
  return p.compiled(path);
}

const SHOULD_ESCAPE = new Set(['.', '+', '(', ')', '|', '{', '}', '$']);

/** patternmatcher's pattern → matcher: exact, prefix (`x/**`), suffix (`**​/x`) or regexp. */
function compilePattern(pattern: string): ((path: string) => boolean) | PatternError {
  const chars = Array.from(pattern);
  let re = '^';
  let type: 'exact' | 'prefix' | 'suffix' | 'regexp' = 'exact';
  for (let i = 0, k = 0; k < chars.length; i++) {
    const ch = chars[k++]!;
    if (ch === '*') {
      if (chars[k] === '*') {
        k++;
        if (chars[k] === '/') k++;
        if (k >= chars.length) {
          if (type === 'exact') type = 'prefix';
          else {
            re += '.*';
            type = 'regexp';
          }
        } else {
          re += '(.*/)?';
          type = 'regexp';
        }
        if (i === 0) type = 'suffix';
      } else {
        re += '[^/]*';
        type = 'regexp';
      }
    } else if (ch === '?') {
      re += '[^/]';
      type = 'regexp';
    } else if (SHOULD_ESCAPE.has(ch)) {
      re += '\\' + ch;
    } else if (ch === '\\') {
      if (k < chars.length) {
        re += '\\' + chars[k++]!;
        type = 'regexp';
      } else {
        re += '\\\\';
      }
    } else if (ch === '[' || ch === ']') {
      re += ch;
      type = 'regexp';
    } else {
      re += ch;
    }
  }
  switch (type) {
    case 'exact':
      return (path) => path === pattern;
    case 'prefix': {
      const prefix = pattern.slice(0, -2);
      return (path) => path.startsWith(prefix);
    }
    case 'suffix': {
      const suffix = pattern.slice(2);
      return (path) => path.endsWith(suffix) || (suffix.startsWith('/') && path === suffix.slice(1));
    }
    case 'regexp':
      try {
        const r = new RegExp(re + '$', 'u');
        return (path) => r.test(path);
      } catch {
        return new PatternError(BAD_PATTERN);
      }
  }
}

/**
 * Go's filepath.Match on Unix: `*` and `?` never match `/`, `[...]`/`[^...]` classes with
 * ranges, `\` escapes. Throws PatternError(`syntax error in pattern`) for a malformed pattern.
 */
export function filepathMatch(pattern: string, name: string): boolean {
  let pat = Array.from(pattern);
  let s = Array.from(name);
  outer: while (pat.length > 0) {
    const { star, chunk, rest } = scanChunk(pat);
    pat = rest;
    if (star && chunk.length === 0) return !s.includes('/');
    const r = matchChunk(chunk, s);
    if (r.ok && (r.rest.length === 0 || pat.length > 0)) {
      s = r.rest;
      continue;
    }
    if (star) {
      for (let i = 0; i < s.length && s[i] !== '/'; i++) {
        const r2 = matchChunk(chunk, s.slice(i + 1));
        if (r2.ok) {
          if (pat.length === 0 && r2.rest.length > 0) continue;
          s = r2.rest;
          continue outer;
        }
      }
    }
    while (pat.length > 0) {
      const c = scanChunk(pat);
      pat = c.rest;
      matchChunk(c.chunk, []);
    }
    return false;
  }
  return s.length === 0;
}

function scanChunk(pattern: string[]): { star: boolean; chunk: string[]; rest: string[] } {
  let star = false;
  let p = pattern;
  while (p.length > 0 && p[0] === '*') {
    p = p.slice(1);
    star = true;
  }
  let inrange = false;
  let i = 0;
  scan: for (; i < p.length; i++) {
    switch (p[i]) {
      case '\\':
        if (i + 1 < p.length) i++;
        break;
      case '[':
        inrange = true;
        break;
      case ']':
        inrange = false;
        break;
      case '*':
        if (!inrange) break scan;
        break;
    }
  }
  return { star, chunk: p.slice(0, i), rest: p.slice(i) };
}

/** Matches one chunk at the start of s; keeps parsing after a mismatch to report bad syntax. */
function matchChunk(chunkIn: readonly string[], sIn: readonly string[]): { ok: boolean; rest: string[] } {
  let chunk = chunkIn.slice();
  let s = sIn.slice();
  let failed = false;
  const bad = (): never => {
    throw new PatternError(BAD_PATTERN);
  };
  const getEsc = (): string => {
    if (chunk.length === 0 || chunk[0] === '-' || chunk[0] === ']') bad();
    if (chunk[0] === '\\') {
      chunk = chunk.slice(1);
      if (chunk.length === 0) bad();
    }
    const r = chunk[0]!;
    chunk = chunk.slice(1);
    if (chunk.length === 0) bad();
    return r;
  };
  while (chunk.length > 0) {
    if (!failed && s.length === 0) failed = true;
    const c = chunk[0]!;
    if (c === '[') {
      let r = '';
      if (!failed) {
        r = s[0]!;
        s = s.slice(1);
      }
      chunk = chunk.slice(1);
      let negated = false;
      if (chunk.length > 0 && chunk[0] === '^') {
        negated = true;
        chunk = chunk.slice(1);
      }
      let match = false;
      let nrange = 0;
      for (;;) {
        if (chunk.length > 0 && chunk[0] === ']' && nrange > 0) {
          chunk = chunk.slice(1);
          break;
        }
        const lo = getEsc();
        let hi = lo;
        if (chunk[0] === '-') {
          chunk = chunk.slice(1);
          hi = getEsc();
        }
        const rc = r.codePointAt(0) ?? -1;
        if (lo.codePointAt(0)! <= rc && rc <= hi.codePointAt(0)!) match = true;
        nrange++;
      }
      if (match === negated) failed = true;
    } else if (c === '?') {
      if (!failed) {
        if (s[0] === '/') failed = true;
        s = s.slice(1);
      }
      chunk = chunk.slice(1);
    } else {
      if (c === '\\') {
        chunk = chunk.slice(1);
        if (chunk.length === 0) bad();
      }
      if (!failed) {
        if (chunk[0] !== s[0]) failed = true;
        s = s.slice(1);
      }
      chunk = chunk.slice(1);
    }
  }
  return failed ? { ok: false, rest: [] } : { ok: true, rest: s };
}

/** Go's path.Clean. */
export function cleanPath(p: string): string {
  let r = posix.normalize(p);
  if (r.length > 1 && r.endsWith('/')) r = r.slice(0, -1);
  return r;
}

/** Go's filepath.Dir. */
function goDir(p: string): string {
  const i = p.lastIndexOf('/');
  return cleanPath(p.slice(0, i + 1)) || '.';
}

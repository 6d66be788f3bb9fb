/**
 * Shell glob patterns of `${var#pat}`, `${var%pat}` and `${var/pat/repl}` (`*`, `?`, `\*`, `\?`,
 * `\\`; `\}` and `\/` are delimiter escapes), matched by simulating the pattern as an automaton:
 * O(pattern × value) steps, where a backtracking RegExp takes exponential time on patterns like
 * `*a*a*a*b` (BuildKit uses Go's linear-time regexp). `*` and `?` do not match a newline, as Go's
 * `.` does not. The work is also capped, so no Dockerfile can make one expansion run for long.
 */

type Token = { readonly kind: 'star' | 'any' } | { readonly kind: 'char'; readonly ch: string };

/** Steps (pattern tokens × value characters) one pattern operation may take: well under a second. */
export const MAX_PATTERN_STEPS = 1 << 26;

/** A malformed pattern or one too expensive to match; the lexer reports it as a ShellLexError. */
export class ShellPatternError extends Error {}

/** Pattern text → tokens, consecutive stars merged (they match the same). */
function tokenize(pattern: string): Token[] {
  const p = Array.from(pattern);
  const out: Token[] = [];
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!;
    if (c === '*') {
      if (out[out.length - 1]?.kind !== 'star') out.push({ kind: 'star' });
    } else if (c === '?') out.push({ kind: 'any' });
    else if (c === '\\') {
      const n = p[i + 1];
      if (n === '}' || n === '/') continue; // the delimiter escape: the next character is literal
      if (n !== '*' && n !== '?' && n !== '\\') throw new ShellPatternError(`invalid pattern (${pattern}) in substitution: invalid escape '\\${n ?? ''}'`);
      out.push({ kind: 'char', ch: n });
      i++;
    } else out.push({ kind: 'char', ch: c });
  }
  return out;
}

/**
 * Runs the pattern over `chars` from `start`. Threads carry the position they started at; a
 * new one starts at every position when `unanchored`. Returns the leftmost match, longest for
 * that start when `longest`, else shortest — what leftmost-first regexps give for patterns of
 * `*`, `?` and characters only. `budget.steps` is charged for the work.
 */
function run(toks: readonly Token[], chars: readonly string[], start: number, unanchored: boolean, longest: boolean, budget: { steps: number }): { start: number; end: number } | undefined {
  const m = toks.length;
  // starts[j]: the leftmost start of a thread that has matched toks[0..j), or -1.
  let starts = new Int32Array(m + 1).fill(-1);
  let best: { start: number; end: number } | undefined;
  const add = (set: Int32Array, j: number, s: number): void => {
    // A star also matches nothing: reaching j before a star reaches j+1 too.
    for (;;) {
      if (set[j] !== -1 && set[j]! <= s) return;
      set[j] = s;
      if (j < m && toks[j]!.kind === 'star') j++;
      else return;
    }
  };
  for (let pos = start; ; pos++) {
    if (!best && (unanchored || pos === start)) add(starts, 0, pos);
    const acc = starts[m]!;
    if (acc !== -1 && (!best || acc < best.start || (acc === best.start && longest))) best = { start: acc, end: pos };
    if (best && !longest) {
      // Shortest: done once no thread could still give a match further left.
      let alive = false;
      for (let j = 0; j < m && !alive; j++) alive = starts[j] !== -1 && starts[j]! < best.start;
      if (!alive) return best;
    }
    if (pos >= chars.length) return best;
    budget.steps -= m + 1;
    if (budget.steps < 0) throw new ShellPatternError('pattern matching in substitution is too expensive (pattern or value too long)');
    const c = chars[pos]!;
    const next = new Int32Array(m + 1).fill(-1);
    let any = false;
    for (let j = 0; j < m; j++) {
      const s = starts[j]!;
      // A thread that started right of the best match can no longer win.
      if (s === -1 || (best && s > best.start)) continue;
      const t = toks[j]!;
      if (t.kind === 'star') {
        if (c !== '\n') {
          add(next, j, s);
          any = true;
        }
      } else if (t.kind === 'any' ? c !== '\n' : t.kind === 'char' && t.ch === c) {
        add(next, j + 1, s);
        any = true;
      }
    }
    starts = next;
    if (!any && (best || !unanchored)) return best;
  }
}

/** `${var#pat}` (shortest) and `${var##pat}` (longest): `value` without its prefix matching `pattern`. */
export function trimPrefix(pattern: string, value: string, longest: boolean): string {
  const chars = Array.from(value);
  const budget = { steps: MAX_PATTERN_STEPS };
  const m = run(tokenize(pattern), chars, 0, false, longest, budget);
  return m ? chars.slice(m.end).join('') : value;
}

/** `${var%pat}` and `${var%%pat}`: the same on the reversed pattern (escape pairs kept) and value. */
export function trimSuffix(pattern: string, value: string, longest: boolean): string {
  return reverseString(trimPrefix(reversePattern(pattern), reverseString(value), longest));
}

/**
 * `${var/pat/repl}` and `${var//pat/repl}`: the leftmost-longest match (or every
 * non-overlapping one) replaced; as in Go, an empty match right after a match is skipped.
 */
export function replaceMatches(pattern: string, value: string, replacement: string, all: boolean, maxResult: number): string {
  const toks = tokenize(pattern);
  const chars = Array.from(value);
  const budget = { steps: MAX_PATTERN_STEPS };
  let out = '';
  let pos = 0;
  let lastEnd = -1;
  while (pos <= chars.length) {
    const m = run(toks, chars, pos, true, true, budget);
    if (!m) break;
    if (m.end === m.start && m.start === lastEnd) {
      // Go: an empty match abutting the previous match does not count.
      if (m.start >= chars.length) break;
      out += chars[m.start];
      pos = m.start + 1;
      continue;
    }
    out += chars.slice(pos, m.start).join('') + replacement;
    if (out.length > maxResult) throw new ShellPatternError(`substitution result longer than ${maxResult} characters`);
    lastEnd = m.end;
    if (m.end === m.start) {
      if (m.start < chars.length) out += chars[m.start];
      pos = m.start + 1;
    } else pos = m.end;
    if (!all) break;
  }
  return out + chars.slice(Math.min(pos, chars.length)).join('');
}

/** Reverses a pattern keeping each `\x` escape pair in order. */
function reversePattern(pattern: string): string {
  const p = Array.from(pattern);
  const out: string[] = new Array(p.length);
  const last = p.length - 1;
  for (let i = 0; i <= last; ) {
    const tok = p[i]!;
    const o = last - i;
    if (tok === '\\' && i !== last) {
      out[o - 1] = tok;
      out[o] = p[i + 1]!;
      i += 2;
      continue;
    }
    out[o] = tok;
    i++;
  }
  return out.join('');
}

const reverseString = (s: string): string => Array.from(s).reverse().join('');

/**
 * The Dockerfile parser's own word handling (BuildKit parser/line_parsers.go semantics), which is
 * not the shell lexer: it finds flags, `name=value` words and exec-form JSON arrays while keeping
 * quotes and escapes in the words for later expansion.
 */

const isSpace = (ch: string): boolean => /^\s$/u.test(ch);

/** How a word scan treats quoting: the two callers differ only here. */
interface ScanRules {
  readonly escape: string;
  /** Keep quote characters and escape tokens in the words (for later expansion). */
  readonly keepQuoting: boolean;
  /** Whether the escape token also escapes inside single quotes. */
  readonly escapeInSingleQuotes: boolean;
}

interface ScannedWord {
  readonly word: string;
  /** UTF-16 offsets of the word in the text: `start` at its first character, `end` just after it. */
  readonly start: number;
  readonly end: number;
}

/**
 * BuildKit's whitespace word splitter (parser/line_parsers.go), one word at a time so a caller
 * can stop early. An empty word is kept when it was quoted (`''`).
 */
function* scanWords(text: string, rules: ScanRules): Generator<ScannedWord> {
  let phase: 'spaces' | 'word' | 'quote' = 'spaces';
  let word = '';
  let quote = '';
  let quoted = false;
  let start = 0;
  for (let pos = 0; pos <= text.length; pos++) {
    const end = pos === text.length;
    let ch = end ? '' : text[pos]!;
    if (phase === 'spaces') {
      if (end) return;
      if (isSpace(ch)) continue;
      phase = 'word';
      start = pos;
    }
    if (end || (phase === 'word' && isSpace(ch))) {
      if (quoted || word.length > 0) yield { word, start, end: pos };
      if (end) return;
      phase = 'spaces';
      word = '';
      quoted = false;
      continue;
    }
    if (phase === 'word') {
      if (ch === "'" || ch === '"') {
        quote = ch;
        quoted = true;
        phase = 'quote';
        if (!rules.keepQuoting) continue;
      } else if (ch === rules.escape) {
        if (pos + 1 === text.length) continue;
        if (rules.keepQuoting) word += ch;
        ch = text[++pos]!;
      }
      word += ch;
      continue;
    }
    // Inside quotes.
    if (ch === quote) {
      phase = 'word';
      if (!rules.keepQuoting) continue;
    } else if (ch === rules.escape && (quote !== "'" || rules.escapeInSingleQuotes)) {
      if (pos + 1 === text.length) {
        phase = 'word';
        continue;
      }
      if (rules.keepQuoting) word += ch;
      ch = text[++pos]!;
    }
    word += ch;
  }
}

/**
 * Splits on whitespace but keeps quotes and escape tokens inside the words (`foo\ bar` stays
 * one word with its backslash; `'a b'` keeps its quotes). Used for ENV, LABEL and ARG.
 */
export function parseWords(rest: string, escapeToken: string): string[] {
  return [...scanWords(rest, { escape: escapeToken, keepQuoting: true, escapeInSingleQuotes: false })].map((w) => w.word);
}

/**
 * Splits leading `--flag[=value]` words (quotes and `\` honoured) from the rest of an
 * instruction's arguments. A bare `--` ends the flags.
 */
export function extractFlags(line: string): { flags: string[]; rest: string } {
  const flags: string[] = [];
  for (const w of scanWords(line, { escape: '\\', keepQuoting: false, escapeInSingleQuotes: true })) {
    if (!line.startsWith('--', w.start)) return { flags, rest: line.slice(w.start) };
    if (w.word === '--' && line.slice(w.start, w.end) === '--') return { flags, rest: line.slice(w.end) };
    flags.push(w.word);
  }
  return { flags, rest: '' };
}

export const NOT_STRING_ARRAY = 'when using JSON array syntax, arrays must be comprised of strings only';

/**
 * Exec form: the text parsed as a JSON array of strings, or undefined when it is not JSON (then
 * the instruction is in shell form). Throws NOT_STRING_ARRAY when it is a JSON array holding
 * something other than strings, as BuildKit does.
 */
export function parseJsonArray(rest: string): string[] | undefined {
  const t = rest.trimStart();
  if (!t.startsWith('[')) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(t);
  } catch {
    return undefined;
  }
  if (!Array.isArray(v)) return undefined;
  if (!v.every((x) => typeof x === 'string')) throw new Error(NOT_STRING_ARRAY);
  return v as string[];
}

/** Whitespace-separated fields, no quote handling (BuildKit parseStringsWhitespaceDelimited). */
export function splitFields(rest: string): string[] {
  return rest.split(/\s+/u).filter((s) => s !== '');
}

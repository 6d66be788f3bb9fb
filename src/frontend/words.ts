/**
 * The Dockerfile parser's own word handling (BuildKit parser/line_parsers.go semantics), which is
 * not the shell lexer: it finds flags, `name=value` words and exec-form JSON arrays while keeping
 * quotes and escapes in the words for later expansion.
 */

const isSpace = (ch: string): boolean => /^\s$/u.test(ch);

/**
 * Splits on whitespace but keeps quotes and escape tokens inside the words (`foo\ bar` stays
 * one word with its backslash; `'a b'` keeps its quotes). Used for ENV, LABEL and ARG.
 */
export function parseWords(rest: string, escapeToken: string): string[] {
  const chars = Array.from(rest);
  const words: string[] = [];
  let phase: 'spaces' | 'word' | 'quote' = 'spaces';
  let word = '';
  let quote = '';
  let blankOK = false;
  for (let pos = 0; pos <= chars.length; pos++) {
    const end = pos === chars.length;
    let ch = end ? '' : chars[pos]!;
    if (phase === 'spaces') {
      if (end) break;
      if (isSpace(ch)) continue;
      phase = 'word';
    }
    if (end) {
      if (blankOK || word.length > 0) words.push(word);
      break;
    }
    if (phase === 'word') {
      if (isSpace(ch)) {
        phase = 'spaces';
        if (blankOK || word.length > 0) words.push(word);
        word = '';
        blankOK = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOK = true;
        phase = 'quote';
      }
      if (ch === escapeToken) {
        if (pos + 1 === chars.length) continue;
        word += ch;
        pos++;
        ch = chars[pos]!;
      }
      word += ch;
      continue;
    }
    // in quote
    if (ch === quote) phase = 'word';
    if (ch === escapeToken && quote !== "'") {
      if (pos + 1 === chars.length) {
        phase = 'word';
        continue;
      }
      pos++;
      word += ch;
      ch = chars[pos]!;
    }
    word += ch;
  }
  return words;
}

/**
 * Splits leading `--flag[=value]` words (quotes and `\` honoured) from the rest of an
 * instruction's arguments. A bare `--` ends the flags.
 */
export function extractFlags(line: string): { flags: string[]; rest: string } {
  const words: string[] = [];
  let phase: 'spaces' | 'word' | 'quote' = 'spaces';
  let word = '';
  let quote = '';
  let blankOK = false;
  for (let pos = 0; pos <= line.length; pos++) {
    const end = pos === line.length;
    let ch = end ? '' : line[pos]!;
    if (phase === 'spaces') {
      if (end) break;
      if (isSpace(ch)) continue;
      if (ch !== '-' || pos + 1 === line.length || line[pos + 1] !== '-') return { flags: words, rest: line.slice(pos) };
      phase = 'word';
    }
    if (end) {
      if (word !== '--' && (blankOK || word.length > 0)) words.push(word);
      break;
    }
    if (phase === 'word') {
      if (isSpace(ch)) {
        phase = 'spaces';
        if (word === '--') return { flags: words, rest: line.slice(pos) };
        if (blankOK || word.length > 0) words.push(word);
        word = '';
        blankOK = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOK = true;
        phase = 'quote';
        continue;
      }
      if (ch === '\\') {
        if (pos + 1 === line.length) continue;
        pos++;
        ch = line[pos]!;
      }
      word += ch;
      continue;
    }
    if (ch === quote) {
      phase = 'word';
      continue;
    }
    if (ch === '\\') {
      if (pos + 1 === line.length) {
        phase = 'word';
        continue;
      }
      pos++;
      ch = line[pos]!;
    }
    word += ch;
  }
  return { flags: words, rest: '' };
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

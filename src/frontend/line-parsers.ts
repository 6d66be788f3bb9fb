import type { AstNode } from './ast.js';
import { NOT_STRING_ARRAY, parseJsonArray, parseWords } from './words.js';

/**
 * Per-instruction argument shapes of BuildKit's AST (parser/line_parsers.go): how the text after
 * the keyword and flags becomes the node's `next` chain. Values stay raw (quotes and escapes
 * kept); expansion happens later with the stage's environment.
 */

export interface ParsedArguments {
  readonly next?: AstNode;
  readonly json: boolean;
}

type LineParser = (rest: string, escapeToken: string, sub: (line: string) => AstNode) => ParsedArguments;

const WHITESPACE = /[\t\v\f\r ]+/;

/** A chain of plain argument nodes. */
export function chain(values: readonly string[], last?: AstNode): AstNode | undefined {
  let next = last;
  for (let i = values.length - 1; i >= 0; i--) next = leaf(values[i]!, next);
  return next;
}

function leaf(value: string, next?: AstNode, children: readonly AstNode[] = []): AstNode {
  return { value, next, children, heredocs: [], json: false, original: '', flags: [], startLine: 0, endLine: 0, prevComment: [] };
}

const none: ParsedArguments = { next: undefined, json: false };

const parseIgnore: LineParser = () => ({ next: leaf(''), json: false });

const parseString: LineParser = (rest) => (rest === '' ? none : { next: leaf(rest), json: false });

const parseStringsWhitespaceDelimited: LineParser = (rest) => (rest === '' ? none : { next: chain(rest.split(WHITESPACE)), json: false });

/** `["a","b"]` → chain, or undefined when the text is not a JSON array. Throws for non-strings. */
function tryJson(rest: string): ParsedArguments | undefined {
  const argv = parseJsonArray(rest);
  return argv ? { next: chain(argv), json: true } : undefined;
}

const parseMaybeJson: LineParser = (rest) => {
  if (rest === '') return none;
  return tryJson(rest) ?? { next: leaf(rest), json: false };
};

const parseMaybeJsonToList: LineParser = (rest, esc, sub) => tryJson(rest) ?? parseStringsWhitespaceDelimited(rest, esc, sub);

/** ENV/LABEL: `k=v ...` gives (k v "=") triples, the legacy `k v w` form one (k "v w" "") triple. */
function parseNameVal(kw: string): LineParser {
  return (rest, esc) => {
    const words = parseWords(rest, esc);
    if (words.length === 0) return none;
    if (!words[0]!.includes('=')) {
      const m = WHITESPACE.exec(rest);
      if (!m) throw new Error(`${kw} must have two arguments`);
      return { next: chain([rest.slice(0, m.index), rest.slice(m.index + m[0].length), '']), json: false };
    }
    const values: string[] = [];
    for (const w of words) {
      const eq = w.indexOf('=');
      if (eq < 0) throw new Error(`Syntax error - can't find = in ${goQuote(w)}. Must be of the form: name=value`);
      values.push(w.slice(0, eq), w.slice(eq + 1), '=');
    }
    return { next: chain(values), json: false };
  };
}

const parseNameOrNameVal: LineParser = (rest, esc) => {
  const words = parseWords(rest, esc);
  return words.length === 0 ? none : { next: chain(words), json: false };
};

const parseSubCommand: LineParser = (rest, _esc, sub) => (rest === '' ? none : { next: leaf('', undefined, [sub(rest)]), json: false });

/** HEALTHCHECK: the type word, then the command as for CMD. */
const parseHealthConfig: LineParser = (rest, esc, sub) => {
  const m = /^(\S*)\s*/.exec(rest)!;
  const typ = m[1]!;
  if (typ === '') return none;
  const cmd = parseMaybeJson(rest.slice(m[0].length), esc, sub);
  return { next: leaf(typ, cmd.next), json: cmd.json };
};

const DISPATCH: Record<string, LineParser> = {
  add: parseMaybeJsonToList,
  arg: parseNameOrNameVal,
  cmd: parseMaybeJson,
  copy: parseMaybeJsonToList,
  entrypoint: parseMaybeJson,
  env: parseNameVal('ENV'),
  expose: parseStringsWhitespaceDelimited,
  from: parseStringsWhitespaceDelimited,
  healthcheck: parseHealthConfig,
  label: parseNameVal('LABEL'),
  maintainer: parseString,
  onbuild: parseSubCommand,
  run: parseMaybeJson,
  shell: parseMaybeJson,
  stopsignal: parseString,
  user: parseString,
  volume: parseMaybeJsonToList,
  workdir: parseString,
};

/**
 * The argument chain of instruction `cmd` (lower case). Unknown instructions get one empty node,
 * as in BuildKit, so the error is reported when the instruction is interpreted. Throws with
 * BuildKit's message for what the AST level rejects.
 */
export function argumentsFor(cmd: string, rest: string, escapeToken: string, sub: (line: string) => AstNode): ParsedArguments {
  const p = Object.prototype.hasOwnProperty.call(DISPATCH, cmd) ? DISPATCH[cmd]! : parseIgnore;
  return p(rest, escapeToken, sub);
}

export { NOT_STRING_ARRAY };

/** Go's strconv.Quote: `"…"` with Go escapes; printable Unicode kept as is. */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    switch (ch) {
      case '"': out += '\\"'; continue;
      case '\\': out += '\\\\'; continue;
      case '\x07': out += '\\a'; continue;
      case '\b': out += '\\b'; continue;
      case '\f': out += '\\f'; continue;
      case '\n': out += '\\n'; continue;
      case '\r': out += '\\r'; continue;
      case '\t': out += '\\t'; continue;
      case '\v': out += '\\v'; continue;
      default:
    }
    if (isGoPrintable(c)) out += ch;
    else if (c < 0x80) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else if (c === 0xfffd && ch !== '\ufffd') out += '\\ufffd';
    else if (c < 0x10000) out += `\\u${c.toString(16).padStart(4, '0')}`;
    else out += `\\U${c.toString(16).padStart(8, '0')}`;
  }
  return out + '"';
}

/** strconv.IsPrint: letters, marks, numbers, punctuation, symbols and U+0020. */
function isGoPrintable(c: number): boolean {
  if (c === 0x20) return true;
  if (c >= 0xd800 && c <= 0xdfff) return false;
  return /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u.test(String.fromCodePoint(c));
}

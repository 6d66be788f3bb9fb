import { ShellLexer, type EnvGetter } from './shell-lexer.js';

/**
 * Heredoc markers on ADD/COPY/RUN lines (BuildKit parser heredoc handling): which words of an
 * instruction line open a heredoc, the delimiter name, whether the body is expanded, and `<<-`
 * tab stripping.
 */

export interface Heredoc {
  /** Delimiter word with quotes removed (`EOF` for `<<'EOF'`). */
  readonly name: string;
  /** `3<<EOF` → 3; 0 when no descriptor is given. */
  readonly fileDescriptor: number;
  /** False when any part of the delimiter is quoted: the body is then taken literally. */
  readonly expand: boolean;
  /** `<<-`: leading tabs are stripped from body lines and the terminator. */
  readonly chomp: boolean;
  /** Raw body including its final newline, before tab stripping. */
  readonly content: string;
}

const NO_ENV: EnvGetter = { get: () => undefined };
const HEREDOC_WORD = /^(\d*)<<(-?)([^<]*)$/;
const countQuotes = (s: string): number => (s.match(/['"]/g) ?? []).length;

/**
 * The heredoc a single word opens (`<<EOF`, `<<-"EOF"`, `3<<EOF`), or undefined when the word is
 * not a heredoc marker. Throws when the delimiter's quoting is malformed (`<<'EOF`).
 */
export function parseHeredocToken(word: string): Omit<Heredoc, 'content'> | undefined {
  const m = HEREDOC_WORD.exec(word);
  if (!m) return undefined;
  const rest = m[3]!;
  if (rest === '') return undefined;
  const words = new ShellLexer('\\', { skipUnsetEnv: true }).processWords(rest, NO_ENV);
  if (words.length !== 1) return undefined;
  const raw = new ShellLexer('\\', { skipUnsetEnv: true, rawQuotes: true }).processWords(rest, NO_ENV);
  if (raw.length !== words.length) throw new Error(`internal lexing of heredoc produced inconsistent results: ${rest}`);
  const name = words[0]!;
  return {
    name,
    fileDescriptor: m[1] === '' ? 0 : Number(m[1]),
    // Quotes that disappear in normal lexing were quoting; their presence turns expansion off.
    expand: countQuotes(name) === countQuotes(raw[0]!),
    chomp: m[2] === '-',
  };
}

/** Heredoc markers of a whole instruction line, in order (quoted `"<<EOF"` is not one). */
export function heredocsFromLine(line: string): Omit<Heredoc, 'content'>[] {
  let words: string[];
  try {
    words = new ShellLexer('\\', { rawQuotes: true, rawEscapes: true, skipUnsetEnv: true }).processWords(line, NO_ENV);
  } catch {
    // BuildKit ignores lexing errors here: the line simply has no heredocs.
    words = [];
  }
  const out: Omit<Heredoc, 'content'>[] = [];
  for (const w of words) {
    const h = parseHeredocToken(w);
    if (h) out.push(h);
  }
  return out;
}

/** `<<-` body: leading tabs removed from every line. */
export function chompHeredocContent(content: string): string {
  return content.replace(/^\t+/gm, '');
}

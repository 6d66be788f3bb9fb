/**
 * BuildKit's shell word lexer (frontend/dockerfile/shell/lex.go semantics): quotes, escapes and
 * `$var` / `${var…}` expansion with the bash-like modifiers Dockerfiles allow. It does not run a
 * shell: RUN/CMD/ENTRYPOINT shell-form text is never passed through here.
 */

import { ShellPatternError, replaceMatches, trimPrefix, trimSuffix } from './shell-pattern.js';

/** `${…}` nesting allowed in one word: far beyond real use, far below the stack's limit. */
export const MAX_EXPANSION_DEPTH = 64;
/**
 * Length of one word after expansion. A RUN process cannot even receive an environment string
 * over 128 KiB (Linux MAX_ARG_STRLEN), so 1 MiB is no real limit, yet it stops a few lines of
 * `ARG b=${a}${a}` from doubling a value into gigabytes.
 */
export const MAX_EXPANDED_LENGTH = 1 << 20;
/**
 * Characters all variable references of one Dockerfile may substitute, summed: many ARGs each
 * just under MAX_EXPANDED_LENGTH would otherwise still take gigabytes and minutes.
 */
export const MAX_EXPANSION_TOTAL = 64 << 20;

/** What one compile's expansions may still substitute (MAX_EXPANSION_TOTAL); shared by its lexers. */
export class ExpansionBudget {
  #left = MAX_EXPANSION_TOTAL;
  charge(n: number): void {
    this.#left -= n;
    if (this.#left < 0) throw new ShellLexError(`variable expansion substituted more than ${MAX_EXPANSION_TOTAL >> 20} MiB in this Dockerfile (ARG or ENV values built from each other?)`);
  }
}

/** Variable lookup used by the lexer; `undefined` means unset (distinct from ''). */
export interface EnvGetter {
  get(name: string): string | undefined;
}

/** An EnvGetter over a `k=v` list: the last entry for a key wins; a bare `k` means ''. */
export function envFromList(list: readonly string[]): EnvGetter {
  const map = new Map<string, string>();
  for (const e of list) {
    const i = e.indexOf('=');
    if (i < 0) map.set(e, '');
    else map.set(e.slice(0, i), e.slice(i + 1));
  }
  return { get: (name) => map.get(name) };
}

/** An EnvGetter over a plain record (own keys only). */
export function envFromRecord(rec: Readonly<Record<string, string>>): EnvGetter {
  return { get: (name) => (Object.prototype.hasOwnProperty.call(rec, name) ? rec[name] : undefined) };
}

export interface ProcessResult {
  /** The whole processed string (quotes removed, escapes applied, no splitting). */
  readonly result: string;
  /** Words after splitting on unquoted whitespace. */
  readonly words: readonly string[];
  /** Names looked up and found. */
  readonly matched: ReadonlySet<string>;
  /** Names looked up and not found. */
  readonly unmatched: ReadonlySet<string>;
}

/** Thrown for bad syntax or `${x:?msg}` failures; message is BuildKit's (`failed to process "…": …`). */
export class ShellLexError extends Error {
  override readonly name = 'ShellLexError';
}

const EOF = -1;

class Scanner {
  readonly #chars: string[];
  #pos = 0;
  constructor(s: string) {
    this.#chars = Array.from(s);
  }
  peek(): string | typeof EOF {
    return this.#pos < this.#chars.length ? this.#chars[this.#pos]! : EOF;
  }
  next(): string | typeof EOF {
    return this.#pos < this.#chars.length ? this.#chars[this.#pos++]! : EOF;
  }
}

const isSpace = (ch: string): boolean => /^\s$/u.test(ch);
const isLetter = (ch: string): boolean => /^\p{L}$/u.test(ch);
const isDigit = (ch: string): boolean => /^\p{Nd}$/u.test(ch);
const SPECIAL_PARAMS = new Set(['@', '*', '#', '?', '-', '$', '!', '0']);

/** Accumulates words the way a shell splits unquoted text. Linear in what is added. */
class Words {
  #word = '';
  #words: string[] = [];
  #inWord = false;
  /** Blanks (space, tab) at the end of #word: the heredoc check below must not rescan the word. */
  #blanks = 0;
  addChar(ch: string): void {
    if (isSpace(ch)) {
      // Blanks after an unquoted heredoc operator belong to it (`<<  EOF` is one heredoc word).
      if ((ch === ' ' || ch === '\t') && this.#afterHeredocOperator()) {
        this.addRawChar(ch);
        return;
      }
      if (this.#inWord && this.#word.length !== 0) {
        this.#words.push(this.#word);
        this.#word = '';
        this.#blanks = 0;
        this.#inWord = false;
      }
    } else {
      this.addRawChar(ch);
    }
  }
  addRawChar(ch: string): void {
    this.#word += ch;
    this.#blanks = ch === ' ' || ch === '\t' ? this.#blanks + 1 : 0;
    this.#inWord = true;
  }
  addString(s: string): void {
    // Runs without whitespace are appended whole; only whitespace needs a look per character.
    for (const [run] of s.matchAll(/\s+|\S+/gu)) {
      if (/^\S/u.test(run)) this.addRawString(run);
      else for (const ch of run) this.addChar(ch);
    }
  }
  addRawString(s: string): void {
    this.#word += s;
    let trailing = 0;
    while (trailing < s.length && (s[s.length - 1 - trailing] === ' ' || s[s.length - 1 - trailing] === '\t')) trailing++;
    this.#blanks = trailing === s.length ? this.#blanks + trailing : trailing;
    this.#inWord = true;
  }
  /** Whether #word ends in `<<` or `<<-` plus blanks. */
  #afterHeredocOperator(): boolean {
    const body = this.#word.length - this.#blanks;
    return this.#word.endsWith('<<', body) || this.#word.endsWith('<<-', body);
  }
  getWords(): string[] {
    if (this.#word.length > 0) {
      this.#words.push(this.#word);
      this.#word = '';
      this.#blanks = 0;
      this.#inWord = false;
    }
    return this.#words;
  }
}

/** Lexer modes BuildKit's parser uses to find heredoc markers; all off for normal expansion. */
export interface LexerModes {
  /** Keep quote characters in the output. */
  readonly rawQuotes?: boolean;
  /** Keep escape tokens in the output. */
  readonly rawEscapes?: boolean;
  /** Leave references to unset variables as written (`$x`, `${x:-y}`). */
  readonly skipUnsetEnv?: boolean;
  /** Quotes are ordinary characters (COPY heredoc bodies). */
  readonly skipProcessQuotes?: boolean;
}

class ShellWord {
  readonly matched = new Set<string>();
  readonly unmatched = new Set<string>();
  readonly #sc: Scanner;
  #rawEscapes: boolean;
  /** `${…}` levels open: each costs stack frames, so it is bounded (MAX_EXPANSION_DEPTH). */
  #depth = 0;
  constructor(
    input: string,
    readonly env: EnvGetter,
    readonly escapeToken: string,
    readonly modes: LexerModes,
    readonly budget: ExpansionBudget,
  ) {
    this.#sc = new Scanner(input);
    this.#rawEscapes = modes.rawEscapes === true;
  }

  processStopOn(stop: string | typeof EOF, rawEscapes: boolean): { result: string; words: string[] } {
    const saved = this.#rawEscapes;
    this.#rawEscapes = rawEscapes;
    try {
      return this.#processStopOn(stop, rawEscapes);
    } finally {
      this.#rawEscapes = saved;
    }
  }

  #processStopOn(stop: string | typeof EOF, rawEscapes: boolean): { result: string; words: string[] } {
    let result = '';
    const words = new Words();
    const sc = this.#sc;
    while (sc.peek() !== EOF) {
      const ch = sc.peek() as string;
      if (stop !== EOF && ch === stop) {
        sc.next();
        return { result, words: words.getWords() };
      }
      if (ch === '$' || ((ch === "'" || ch === '"') && !this.modes.skipProcessQuotes)) {
        const tmp = ch === '$' ? this.processDollar() : ch === "'" ? this.processSingleQuote() : this.processDoubleQuote();
        result += tmp;
        if (result.length > MAX_EXPANDED_LENGTH) throw tooLong();
        if (ch === '$') words.addString(tmp);
        else words.addRawString(tmp);
        continue;
      }
      let c = sc.next() as string;
      if (c === this.escapeToken) {
        if (rawEscapes) {
          words.addRawChar(c);
          result += c;
        }
        const n = sc.next();
        if (n === EOF) break; // a trailing escape is dropped
        c = n;
        words.addRawChar(c);
      } else {
        words.addChar(c);
      }
      result += c;
    }
    if (stop !== EOF) throw new ShellLexError(`unexpected end of statement while looking for matching ${stop}`);
    return { result, words: words.getWords() };
  }

  processSingleQuote(): string {
    const sc = this.#sc;
    sc.next();
    const q = this.modes.rawQuotes ? "'" : '';
    let result = q;
    for (;;) {
      const ch = sc.next();
      if (ch === EOF) throw new ShellLexError('unexpected end of statement while looking for matching single-quote');
      if (ch === "'") return result + q;
      result += ch;
    }
  }

  processDoubleQuote(): string {
    const sc = this.#sc;
    sc.next();
    const q = this.modes.rawQuotes ? '"' : '';
    let result = q;
    for (;;) {
      const p = sc.peek();
      if (p === EOF) throw new ShellLexError('unexpected end of statement while looking for matching double-quote');
      if (p === '"') {
        sc.next();
        return result + q;
      }
      if (p === '$') {
        result += this.processDollar();
        if (result.length > MAX_EXPANDED_LENGTH) throw tooLong();
        continue;
      }
      let ch = sc.next() as string;
      if (ch === this.escapeToken) {
        if (this.#rawEscapes) result += ch;
        const n = sc.peek();
        if (n === EOF) continue; // trailing escape: ignored, then the missing quote is reported
        if (n === '"' || n === '$' || n === this.escapeToken) ch = sc.next() as string;
      }
      result += ch;
    }
  }

  processName(): string {
    const sc = this.#sc;
    let name = '';
    while (sc.peek() !== EOF) {
      const ch = sc.peek() as string;
      if (name.length === 0 && isDigit(ch)) {
        while (sc.peek() !== EOF && isDigit(sc.peek() as string)) name += sc.next() as string;
        return name;
      }
      if (name.length === 0 && SPECIAL_PARAMS.has(ch)) return sc.next() as string;
      if (!isLetter(ch) && !isDigit(ch) && ch !== '_') break;
      name += sc.next() as string;
    }
    return name;
  }

  getEnv(name: string): string | undefined {
    const v = this.env.get(name);
    if (v !== undefined) this.matched.add(name);
    else this.unmatched.add(name);
    return v;
  }

  /** Counts substituted text against the Dockerfile's budget. */
  #charge(s: string): string {
    this.budget.charge(s.length);
    return s;
  }

  processDollar(): string {
    const sc = this.#sc;
    sc.next();
    if (sc.peek() !== '{') {
      const name = this.processName();
      if (name === '') return '$';
      const v = this.getEnv(name);
      if (v === undefined && this.modes.skipUnsetEnv) return `$${name}`;
      return this.#charge(v ?? '');
    }
    sc.next();
    if (++this.#depth > MAX_EXPANSION_DEPTH) throw new ShellLexError(`variable expansion nested deeper than ${MAX_EXPANSION_DEPTH} levels`);
    try {
      return this.#processBraced();
    } finally {
      this.#depth--;
    }
  }

  /** `${…}` after the brace. */
  #processBraced(): string {
    const sc = this.#sc;
    const first = sc.peek();
    if (first === EOF) throw new ShellLexError("syntax error: missing '}'");
    if (first === '{' || first === '}' || first === ':') throw new ShellLexError('syntax error: bad substitution');
    const name = this.processName();
    let ch = sc.next();
    let chs = ch === EOF ? '' : ch;
    if (ch === '}') {
      const v = this.getEnv(name);
      if (v === undefined && this.modes.skipUnsetEnv) return `\${${name}}`;
      return this.#charge(v ?? '');
    }
    let nullIsUnset = false;
    if (ch === ':') {
      nullIsUnset = true;
      ch = sc.next();
      chs += ch === EOF ? '' : ch;
    }
    if (ch === '+' || ch === '-' || ch === '?' || ch === '#' || ch === '%') {
      const rawEscapes = ch === '#' || ch === '%';
      if (nullIsUnset && rawEscapes) throw new ShellLexError(`unsupported modifier (${chs}) in substitution`);
      let word: string;
      try {
        word = this.processStopOn('}', rawEscapes).result;
      } catch (e) {
        if (sc.peek() === EOF) throw new ShellLexError("syntax error: missing '}'");
        throw e;
      }
      const value = this.getEnv(name);
      if (value === undefined && this.modes.skipUnsetEnv) return `\${${name}${chs}${word}}`;
      const unsetOrNull = value === undefined || (nullIsUnset && value === '');
      switch (ch) {
        case '-':
          return unsetOrNull ? word : this.#charge(value!);
        case '+':
          return unsetOrNull ? '' : word;
        case '?':
          if (value === undefined) throw new ShellLexError(`${name}: ${word !== '' ? word : 'is not allowed to be unset'}`);
          if (nullIsUnset && value === '') throw new ShellLexError(`${name}: ${word !== '' ? word : 'is not allowed to be empty'}`);
          return this.#charge(value);
        default: {
          let greedy = false;
          if (word.length > 0 && word[0] === ch) {
            greedy = true;
            word = word.slice(1);
          }
          return this.#charge(ch === '%' ? trimSuffix(word, value ?? '', greedy) : trimPrefix(word, value ?? '', greedy));
        }
      }
    }
    if (ch === '/' && !nullIsUnset) {
      const replaceAll = sc.peek() === '/';
      if (replaceAll) sc.next();
      let pattern: string;
      try {
        pattern = this.processStopOn('/', true).result;
      } catch (e) {
        if (sc.peek() === EOF) throw new ShellLexError("syntax error: missing '/' in ${}");
        throw e;
      }
      let replacement: string;
      try {
        replacement = this.processStopOn('}', true).result;
      } catch (e) {
        if (sc.peek() === EOF) throw new ShellLexError("syntax error: missing '}'");
        throw e;
      }
      const found = this.getEnv(name);
      if (found === undefined && this.modes.skipUnsetEnv) return `\${${name}/${pattern}/${replacement}}`;
      return this.#charge(replaceMatches(pattern, found ?? '', replacement, replaceAll, MAX_EXPANDED_LENGTH));
    }
    throw new ShellLexError(`unsupported modifier (${chs}) in substitution`);
  }
}

function tooLong(): ShellLexError {
  return new ShellLexError(`variable expansion result longer than ${MAX_EXPANDED_LENGTH >> 20} MiB`);
}

/** A word as error messages quote it: a huge one would bury the message. */
function shorten(word: string): string {
  return word.length > 200 ? `${word.slice(0, 200)}…` : word;
}

/** The lexer; `escapeToken` comes from the `# escape=` directive (`\` or `` ` ``). */
export class ShellLexer {
  constructor(
    readonly escapeToken: string = '\\',
    readonly modes: LexerModes = {},
    /** Pass one compile's budget to every lexer it makes, so their expansions add up. */
    readonly budget: ExpansionBudget = new ExpansionBudget(),
  ) {}

  /** Full processing with match tracking. Throws ShellLexError. */
  process(word: string, env: EnvGetter): ProcessResult {
    const sw = new ShellWord(word, env, this.escapeToken, this.modes, this.budget);
    try {
      const { result, words } = sw.processStopOn(EOF, this.modes.rawEscapes === true);
      return { result, words, matched: sw.matched, unmatched: sw.unmatched };
    } catch (e) {
      if (e instanceof ShellLexError || e instanceof ShellPatternError) throw new ShellLexError(`failed to process ${JSON.stringify(shorten(word))}: ${e.message}`);
      throw e;
    }
  }

  /** One word: expansion, quote removal, no splitting. */
  processWord(word: string, env: EnvGetter): string {
    return this.process(word, env).result;
  }

  /** Expansion then splitting on unquoted whitespace. */
  processWords(word: string, env: EnvGetter): string[] {
    return [...this.process(word, env).words];
  }
}

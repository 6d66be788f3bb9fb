import { DirectiveParser } from './directives.js';
import { heredocsFromLine, type Heredoc } from './heredoc.js';
import { argumentsFor } from './line-parsers.js';
import { extractFlags } from './words.js';

/**
 * Dockerfile text → BuildKit's low-level AST (frontend/dockerfile/parser, `Parse`). The shape
 * is BuildKit's `Node`: an instruction is a node whose `next` chain holds its arguments, ONBUILD
 * keeps its trigger as a child, and `original` is the instruction with continuations joined.
 * This parser exists next to dockerfile-ast because the conformance data pins details that
 * dockerfile-ast does not model (heredoc bodies, continuation joining with kept indentation,
 * comments inside continuations, directive quirks, the 65535-byte line limit).
 */

export type { Heredoc } from './heredoc.js';

export interface AstNode {
  /** Instruction keyword as written (case kept) for instruction nodes; an argument otherwise. */
  readonly value: string;
  readonly next?: AstNode;
  readonly children: readonly AstNode[];
  readonly heredocs: readonly Heredoc[];
  /** The arguments came from a JSON array (exec form). */
  readonly json: boolean;
  /** The instruction line with continuations joined (instruction nodes only). */
  readonly original: string;
  /** Leading `--flag[=value]` words (instruction nodes only). */
  readonly flags: readonly string[];
  /** 1-based, inclusive; heredoc bodies are part of their instruction. */
  readonly startLine: number;
  readonly endLine: number;
  /** Comment lines directly above the instruction (text after `#`, trimmed). */
  readonly prevComment: readonly string[];
}

export interface ParseWarning {
  readonly short: string;
  readonly detail: readonly string[];
  readonly url: string;
  readonly line: number;
}

export interface AstResult {
  /** Root node: no value, one child per instruction. */
  readonly ast: AstNode;
  readonly escapeToken: string;
  readonly warnings: readonly ParseWarning[];
}

/** A parse failure with the 1-based lines BuildKit attributes it to (0 when none). */
export class AstParseError extends Error {
  override readonly name = 'AstParseError';
  constructor(
    message: string,
    readonly startLine: number,
    readonly endLine: number,
  ) {
    super(message);
  }
}

/**
 * The largest Dockerfile accepted, in bytes. BuildKit has no such limit of its own (only its
 * 64 KiB line limit), but hand-written Dockerfiles are a few KiB and generated ones rarely a
 * few hundred: 2 MiB keeps the compile of any Dockerfile to seconds and bounded memory.
 */
export const MAX_DOCKERFILE_BYTES = 2 << 20;

/** bufio.MaxScanTokenSize - 1: the longest line BuildKit's scanner accepts, in bytes. */
export const MAX_LINE_BYTES = 65535;

/** Go's unicode.IsSpace. */
export const GO_SPACE = '\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const LEADING_SPACE = new RegExp(`^[${GO_SPACE}]+`, 'u');
const trimLeadingSpace = (s: string): string => s.replace(LEADING_SPACE, '');
const IS_GO_SPACE = new RegExp(`^[${GO_SPACE}]$`, 'u');
// Trailing runs are trimmed by a loop from the end: a `[…]+$` RegExp retries at every position
// of a long run inside the line, quadratic on a line of 60k blanks.
const trimGoSpace = (s: string): string => trimEndWhile(trimLeadingSpace(s), (c) => IS_GO_SPACE.test(c));
const trimNewline = (s: string): string => trimEndWhile(s, (c) => c === '\r' || c === '\n');

function trimEndWhile(s: string, strip: (c: string) => boolean): string {
  let end = s.length;
  while (end > 0 && strip(s[end - 1]!)) end--;
  return s.slice(0, end);
}
const isComment = (s: string): boolean => trimLeadingSpace(s).startsWith('#');
const isEmptyContinuationLine = (s: string): boolean => trimLeadingSpace(trimNewline(s)).length === 0;

/** Lines with their `\n` kept (bufio.Scanner with BuildKit's scanLines). */
function scanLines(text: string): string[] {
  const out: string[] = [];
  let start = 0;
  while (start < text.length) {
    const i = text.indexOf('\n', start);
    const end = i < 0 ? text.length : i + 1;
    out.push(text.slice(start, end));
    start = end;
  }
  return out;
}

class Directives {
  readonly parser = new DirectiveParser();
  escapeToken = '\\';
  #continuation = /([^\\])\\[ \t]*$|^\\[ \t]*$/;

  setEscapeToken(s: string): void {
    if (s !== '`' && s !== '\\') throw new Error(`invalid escape token '${s}' does not match \` or \\`);
    this.escapeToken = s;
    const e = s === '\\' ? '\\\\' : '`';
    // A trailing escape token continues the line unless the character before it is the escape
    // token too; BuildKit's regexp cannot see further back than one character either.
    this.#continuation = new RegExp(`([^${e}])${e}[ \\t]*$|^${e}[ \\t]*$`);
  }

  /** Removes a continuation token; `end` is true when the line does not continue. */
  trimContinuation(line: string): { line: string; end: boolean } {
    const m = this.#continuation.exec(line);
    if (!m) return { line, end: true };
    return { line: line.slice(0, m.index) + (m[1] ?? ''), end: false };
  }

  /** The line processLine saw last was a parser directive. */
  lastWasDirective = false;

  /** processLine: newline (and, for a first line, leading blanks) trimmed; comments become ''. */
  processLine(raw: string, stripLeft: boolean): string {
    let token = trimNewline(raw);
    if (stripLeft) token = trimLeadingSpace(token);
    const d = this.parser.parseLine(token);
    this.lastWasDirective = d !== undefined;
    if (d && d.name === 'escape') this.setEscapeToken(d.value);
    return isComment(token) ? '' : token;
  }
}

const utf8Length = (s: string): number => Buffer.byteLength(s, 'utf8');

/**
 * Parses a whole Dockerfile the way BuildKit's `parser.Parse` does. Throws AstParseError for
 * what BuildKit rejects at this level: no instructions, a bad directive, an ENV/LABEL without
 * value, a JSON array holding a non-string, an unterminated heredoc, an over-long line.
 */
export function parseAst(text: string): AstResult {
  if (text.length > MAX_DOCKERFILE_BYTES || utf8Length(text) > MAX_DOCKERFILE_BYTES) {
    throw new AstParseError(`dockerfile larger than the ${MAX_DOCKERFILE_BYTES >> 20} MiB allowed`, 0, 0);
  }
  const d = new Directives();
  const lines = scanLines(text);
  const children: AstNode[] = [];
  const warnings: ParseWarning[] = [];
  let comments: string[] = [];
  let current = 0; // lines consumed so far
  let idx = 0;
  let rootStart = -1;
  let rootEnd = 0;

  const next = (): string | undefined => {
    if (idx >= lines.length) return undefined;
    const l = lines[idx]!;
    const body = l.endsWith('\n') ? l.slice(0, -1) : l;
    if (utf8Length(body) > MAX_LINE_BYTES) throw new AstParseError(`dockerfile line greater than max allowed size of ${MAX_LINE_BYTES}`, current, 0);
    idx++;
    return l;
  };
  const guard = <T>(start: number, end: number, f: () => T): T => {
    try {
      return f();
    } catch (e) {
      // Syntax errors are plain Errors with BuildKit's messages; these two are bugs, not syntax.
      if (e instanceof AstParseError || e instanceof RangeError || e instanceof TypeError) throw e;
      throw new AstParseError((e as Error).message, start, end);
    }
  };

  for (let raw = next(); raw !== undefined; raw = next()) {
    if (current === 0 && raw.startsWith('\uFEFF')) raw = raw.slice(1);
    if (isComment(raw)) {
      // BuildKit drops the first character, not the `#` (they differ for indented comments).
      const comment = trimGoSpace(raw.slice(1));
      if (comment === '') comments = [];
      else comments.push(comment);
    }
    const first = guard(current, 0, () => d.processLine(raw!, true));
    // A directive is not a comment of the instruction below it (BuildKit strips it).
    if (d.lastWasDirective) comments.pop();
    current++;
    const startLine = current;
    let { line, end } = d.trimContinuation(first);
    if (end && line === '') continue;

    let hasEmptyContinuation = false;
    while (!end) {
      const cont = next();
      if (cont === undefined) break;
      const processed = guard(current, 0, () => d.processLine(cont, false));
      current++;
      if (isComment(cont)) continue;
      if (isEmptyContinuationLine(processed)) {
        hasEmptyContinuation = true;
        continue;
      }
      const t = d.trimContinuation(processed);
      line += t.line;
      end = t.end;
    }
    if (hasEmptyContinuation) {
      warnings.push({
        short: `Empty continuation line found in: ${line}`,
        detail: ['Empty continuation lines will become errors in a future release'],
        url: 'https://docs.docker.com/go/dockerfile/rule/no-empty-continuation/',
        line: current,
      });
    }

    const node = guard(startLine, current, () => nodeFromLine(line, d.escapeToken, comments));
    const heredocs: Heredoc[] = [];
    if (canContainHeredoc(node) && line.includes('<<')) {
      const docs = guard(startLine, current, () => heredocsFromLine(line));
      for (const doc of docs) {
        let content = '';
        let terminated = false;
        for (let body = next(); body !== undefined; body = next()) {
          current++;
          let candidate = trimNewline(body);
          if (doc.chomp) candidate = candidate.replace(/^\t+/, '');
          if (candidate === doc.name) {
            terminated = true;
            break;
          }
          content += body;
        }
        if (!terminated) throw new AstParseError('unterminated heredoc', startLine, current);
        heredocs.push({ ...doc, content });
      }
    }
    children.push({ ...node, heredocs, startLine, endLine: current });
    if (rootStart < 0) rootStart = startLine;
    rootEnd = current;
    comments = [];
  }
  if (rootStart < 0) throw new AstParseError('file with no instructions', current, 0);
  const ast: AstNode = { value: '', children, heredocs: [], json: false, original: '', flags: [], startLine: rootStart, endLine: rootEnd, prevComment: [] };
  return { ast, escapeToken: d.escapeToken, warnings };
}

const HEREDOC_INSTRUCTIONS = new Set(['add', 'copy', 'run']);

function canContainHeredoc(node: AstNode): boolean {
  let n = node;
  if (n.value.toLowerCase() === 'onbuild' && n.next && n.next.children.length > 0) n = n.next.children[0]!;
  return HEREDOC_INSTRUCTIONS.has(n.value.toLowerCase()) && !n.json;
}

const COMMAND_SPLIT = new RegExp(`[${GO_SPACE}]+`, 'u');

/**
 * `ONBUILD ONBUILD …` levels parsed (each is a recursion): BuildKit refuses chained ONBUILD one
 * step later anyway, so this only keeps a hostile line from exhausting the stack.
 */
const MAX_ONBUILD_NESTING = 16;

/** One instruction line → node (BuildKit newNodeFromLine + splitCommand). */
export function nodeFromLine(line: string, escapeToken: string, comments: readonly string[] = [], depth = 0): AstNode {
  if (depth > MAX_ONBUILD_NESTING) throw new Error(`ONBUILD nested deeper than ${MAX_ONBUILD_NESTING} levels`);
  const trimmed = trimGoSpace(line);
  const m = COMMAND_SPLIT.exec(trimmed);
  const cmd = m ? trimmed.slice(0, m.index) : trimmed;
  let flags: string[] = [];
  let args = '';
  if (m) {
    const x = extractFlags(trimmed.slice(m.index + m[0].length));
    flags = x.flags;
    args = trimGoSpace(x.rest);
  }
  const parsed = argumentsFor(cmd.toLowerCase(), args, escapeToken, (sub) => nodeFromLine(sub, escapeToken, [], depth + 1));
  return {
    value: cmd,
    next: parsed.next,
    children: [],
    heredocs: [],
    json: parsed.json,
    original: line,
    flags,
    startLine: 0,
    endLine: 0,
    prevComment: [...comments],
  };
}

/** The argument values of a node's `next` chain, in order. */
export function nextValues(node: AstNode): string[] {
  const out: string[] = [];
  for (let n = node.next; n; n = n.next) out.push(n.value);
  return out;
}

import { BuildError, type SourceLocation } from '../errors.js';
import { AstParseError, parseAst, type Heredoc, type ParseWarning } from './ast.js';

/**
 * Dockerfile text → raw instructions, on top of the BuildKit-compatible AST parser (ast.ts):
 * each AST child becomes a keyword plus its argument text, with heredoc bodies and the comment
 * lines above it attached.
 */

/** Instruction keywords BuildKit knows (upper case). */
export const KEYWORDS = new Set([
  'ADD', 'ARG', 'CMD', 'COPY', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'FROM', 'HEALTHCHECK', 'LABEL',
  'MAINTAINER', 'ONBUILD', 'RUN', 'SHELL', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR',
]);

/** One instruction with continuations and embedded comment lines removed. */
export interface RawInstruction {
  /** Upper-case keyword, e.g. `RUN`. */
  readonly keyword: string;
  /** Everything after the keyword (flags included), trimmed; continuations joined as BuildKit does. */
  readonly rest: string;
  /** `keyword rest` as written (keyword case kept), for ONBUILD triggers and messages. */
  readonly original: string;
  /** 1-based; endLine/endColumn cover the last line of the instruction (heredoc bodies included). */
  readonly location: SourceLocation;
  /** Heredoc bodies opened on the instruction line (ADD/COPY/RUN, shell form only). */
  readonly heredocs: readonly Heredoc[];
  /** Comment lines directly above the instruction (BuildKit PrevComment). */
  readonly comments: readonly string[];
}

export interface ParsedDockerfile {
  /** From the `# escape=` directive; `\\` by default. */
  readonly escapeToken: string;
  readonly instructions: readonly RawInstruction[];
  /** Every syntax error found (unknown instructions, bad directives); empty when the file parsed. */
  readonly errors: readonly BuildError[];
  /** Parser warnings (empty continuation lines). */
  readonly warnings: readonly ParseWarning[];
}

/** Parses a whole Dockerfile. Never throws for user input: errors are collected in `errors`. */
export function parseDockerfile(text: string, file: string): ParsedDockerfile {
  const errors: BuildError[] = [];
  let parsed;
  try {
    parsed = parseAst(text);
  } catch (e) {
    if (!(e instanceof AstParseError)) throw e;
    const line = Math.max(1, e.startLine);
    const loc: SourceLocation = { file, line, ...(e.endLine > line ? { endLine: e.endLine } : {}) };
    return { escapeToken: '\\', instructions: [], errors: [new BuildError('DOCKERFILE_SYNTAX', e.message, { location: loc })], warnings: [] };
  }
  const lines = text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  const instructions: RawInstruction[] = [];
  for (const node of parsed.ast.children) {
    const first = lines[node.startLine - 1] ?? '';
    const last = lines[node.endLine - 1] ?? '';
    const location: SourceLocation = {
      file,
      line: node.startLine,
      column: first.length - first.trimStart().length + 1,
      endLine: node.endLine,
      endColumn: last.length + 1,
    };
    const original = node.original.trim();
    const m = /\s/u.exec(original);
    const rest = m ? original.slice(m.index).trim() : '';
    const keyword = node.value.toUpperCase();
    const raw: RawInstruction = { keyword, rest, original, location, heredocs: node.heredocs, comments: node.prevComment };
    if (!KEYWORDS.has(keyword)) {
      errors.push(new BuildError('UNKNOWN_INSTRUCTION', `unknown instruction: ${node.value}`, { location, hint: suggestKeyword(keyword) }));
      continue;
    }
    instructions.push(raw);
  }
  return { escapeToken: parsed.escapeToken, instructions, errors, warnings: parsed.warnings };
}

/** A "did you mean" hint for a mistyped keyword, or undefined. */
function suggestKeyword(word: string): string | undefined {
  let best: string | undefined;
  let bestDist = Infinity;
  for (const k of KEYWORDS) {
    const d = editDistance(word, k);
    if (d < bestDist) {
      bestDist = d;
      best = k;
    }
  }
  return best !== undefined && bestDist <= 2 ? `did you mean ${best}?` : undefined;
}

/** Levenshtein distance; used for did-you-mean suggestions. */
export function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length]!;
}

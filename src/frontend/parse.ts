import { DockerfileParser } from 'dockerfile-ast';
import { BuildError, type SourceLocation } from '../errors.js';

/**
 * Dockerfile text → raw instructions. dockerfile-ast supplies the document structure (where each
 * instruction starts and ends, directives); the argument text is re-read from the source here
 * because dockerfile-ast's own argument and JSON handling differ from BuildKit's.
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
  /** 1-based; endLine/endColumn cover the last line of the instruction. */
  readonly location: SourceLocation;
}

export interface ParsedDockerfile {
  /** From the `# escape=` directive; `\` by default. */
  readonly escapeToken: string;
  readonly instructions: readonly RawInstruction[];
  /** Every syntax error found (unknown instructions, bad directives); empty when the file parsed. */
  readonly errors: readonly BuildError[];
}

/** Parses a whole Dockerfile. Never throws for user input: errors are collected in `errors`. */
export function parseDockerfile(text: string, file: string): ParsedDockerfile {
  const errors: BuildError[] = [];
  const lines = text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  const doc = DockerfileParser.parse(text);
  let escapeToken = '\\';
  for (const d of doc.getDirectives()) {
    if (d.getName().toLowerCase() !== 'escape') continue;
    const v = d.getValue();
    if (v !== '\\' && v !== '`') {
      const r = d.getRange();
      errors.push(new BuildError('DOCKERFILE_SYNTAX', `invalid escape token '${v}' does not match ` + '` or \\', { location: { file, line: r.start.line + 1, column: 1 } }));
    } else {
      escapeToken = v;
    }
  }
  const instructions: RawInstruction[] = [];
  for (const ins of doc.getInstructions()) {
    const range = ins.getRange();
    const kwRange = ins.getInstructionRange();
    const location: SourceLocation = {
      file,
      line: range.start.line + 1,
      column: range.start.character + 1,
      endLine: range.end.line + 1,
      endColumn: range.end.character + 1,
    };
    const keywordText = ins.getInstruction();
    const keyword = keywordText.toUpperCase();
    const body = joinContinuations(lines, kwRange.end.line, kwRange.end.character, range.end.line, escapeToken);
    const raw: RawInstruction = { keyword, rest: body.trim(), original: `${keywordText} ${body.trim()}`.trim(), location };
    if (!KEYWORDS.has(keyword)) {
      errors.push(new BuildError('UNKNOWN_INSTRUCTION', `unknown instruction: ${keywordText}`, { location, hint: suggestKeyword(keyword) }));
      continue;
    }
    instructions.push(raw);
  }
  return { escapeToken, instructions, errors };
}

/**
 * The text of lines [startLine..endLine] from startChar on, joined the way BuildKit's parser does:
 * a trailing escape token (plus blanks) continues the line and is removed, the next line is
 * appended without a separator, and comment or blank lines inside a continuation are dropped.
 */
function joinContinuations(lines: readonly string[], startLine: number, startChar: number, endLine: number, esc: string): string {
  const contRe = new RegExp(`${esc === '\\' ? '\\\\' : '`'}[ \\t]*$`);
  let out = '';
  for (let i = startLine; i <= endLine && i < lines.length; i++) {
    let line = i === startLine ? lines[i]!.slice(startChar) : lines[i]!;
    if (i !== startLine && (/^\s*#/.test(line) || /^\s*$/.test(line))) continue;
    const m = contRe.exec(line);
    if (m && i < endLine) line = line.slice(0, m.index);
    else if (m && i === endLine) line = line.slice(0, m.index); // escape at EOF: dropped
    out += line;
  }
  return out;
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

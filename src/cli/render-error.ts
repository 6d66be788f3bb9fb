import { isAbsolute, relative } from 'node:path';
import { BuildError } from '../errors.js';
import { readFileInOwnDir } from '../oci/in-root.js';

/**
 * The one place a failure becomes text: `file:line: error`, a snippet of the Dockerfile with
 * `>>>` on the offending lines (as BuildKit prints it), the output tail of a failed RUN, a hint.
 */
export function renderError(err: unknown, opts: { debug: boolean; cwd: string }): string {
  if (!(err instanceof BuildError)) {
    const e = err as Error;
    return `error: ${e?.message ?? String(err)}\n${opts.debug && e?.stack ? e.stack + '\n' : ''}`;
  }
  const out: string[] = [];
  const loc = err.location;
  const where = loc ? `${displayPath(loc.file, opts.cwd)}:${loc.line}: ` : '';
  out.push(`error: ${where}${err.message}`);
  if (err.outputTail?.length) {
    out.push('', '------ last output lines ------', ...err.outputTail.map((l) => `  ${l}`), '-------------------------------');
  }
  if (loc) out.push(...snippet(loc.file, loc.line, loc.endLine ?? loc.line));
  const hint = err.hint ?? defaultHint(err);
  if (hint) out.push(`hint: ${hint}`);
  if (opts.debug && err.stack) out.push(err.stack);
  return out.join('\n') + '\n';
}

/** Relative to the working directory when inside it (`Dockerfile`, `sub/Dockerfile`), else absolute. */
function displayPath(file: string, cwd: string): string {
  const rel = relative(cwd, file);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : file;
}

function defaultHint(err: BuildError): string | undefined {
  if (err.code === 'RUN_FAILED' && err.exitCode !== undefined) {
    return `the command exited with code ${err.exitCode}; its last output lines are above. Debug it in a shell where it failed: build again with --on-error=shell (from a terminal)`;
  }
  return undefined;
}

/** Snippets come from files no bigger than this, and show this much of each line. */
const SNIPPET_MAX_FILE = 16 << 20;
const SNIPPET_MAX_LINE = 400;

function snippet(file: string, from: number, to: number): string[] {
  let lines: string[];
  try {
    // The same resolution and bounds the build read it with: a symlinked Dockerfile never
    // shows a host file, and /dev/zero or a huge file shows nothing.
    lines = readFileInOwnDir(file, SNIPPET_MAX_FILE).split('\n');
    // The newline that ends the last line does not start another one.
    if (lines.length > 1 && lines[lines.length - 1] === '') lines.pop();
  } catch {
    return [];
  }
  const first = Math.max(1, from - 2);
  const last = Math.min(lines.length, to + 2);
  const out = ['', '--------------------'];
  for (let n = first; n <= last; n++) {
    const mark = n >= from && n <= to ? '>>>' : '   ';
    const line = lines[n - 1]!;
    out.push(` ${mark} ${String(n).padStart(3)} | ${line.length > SNIPPET_MAX_LINE ? `${line.slice(0, SNIPPET_MAX_LINE)}…` : line}`);
  }
  out.push('--------------------');
  return out;
}

import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { BuildError } from '../errors.js';

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
  const where = loc ? `${relative(opts.cwd, loc.file) || loc.file}:${loc.line}: ` : '';
  out.push(`error: ${where}${err.message}`);
  if (err.outputTail?.length) {
    out.push('', '------ last output lines ------', ...err.outputTail.map((l) => `  ${l}`), '-------------------------------');
  }
  if (loc) out.push(...snippet(loc.file, loc.line, loc.endLine ?? loc.line));
  if (err.hint) out.push(`hint: ${err.hint}`);
  if (opts.debug && err.stack) out.push(err.stack);
  return out.join('\n') + '\n';
}

function snippet(file: string, from: number, to: number): string[] {
  let lines: string[];
  try {
    lines = readFileSync(file, 'utf8').split('\n');
  } catch {
    return [];
  }
  const first = Math.max(1, from - 2);
  const last = Math.min(lines.length, to + 2);
  const out = ['', '--------------------'];
  for (let n = first; n <= last; n++) {
    const mark = n >= from && n <= to ? '>>>' : '   ';
    out.push(` ${mark} ${String(n).padStart(3)} | ${lines[n - 1]}`);
  }
  out.push('--------------------');
  return out;
}

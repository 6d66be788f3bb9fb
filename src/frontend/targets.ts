import { BuildError } from '../errors.js';
import { parseInstruction, type Instruction } from './instructions.js';
import { parseDockerfile } from './parse.js';

/**
 * The build targets of a Dockerfile: BuildKit's `frontend.targets` request (buildx `--call
 * targets`), in its JSON shape (subrequests/targets: List, Target, pb.Location). Only parses.
 */
export interface Target {
  readonly name?: string;
  readonly default?: boolean;
  readonly description?: string;
  readonly base?: string;
  readonly platform?: string;
  readonly location: { readonly sourceIndex: number; readonly ranges: readonly { readonly start: { line: number }; readonly end: { line: number } }[] };
}

export interface TargetList {
  readonly targets: readonly Target[];
  /** The Dockerfile, base64 (Go's encoding of [][]byte). */
  readonly sources: readonly string[];
}

export function listTargets(text: string, file: string): TargetList {
  const parsed = parseDockerfile(text, file);
  if (parsed.errors.length > 0) throw parsed.errors[0]!;
  const froms = parsed.instructions.filter((r) => r.keyword === 'FROM').map((r) => parseInstruction(r, parsed.escapeToken) as Extract<Instruction, { kind: 'FROM' }>);
  if (froms.length === 0) throw new BuildError('DOCKERFILE_SYNTAX', 'dockerfile contains no stages to build', { location: { file, line: 1 } });
  const targets = froms.map((f, i): Target => {
    const description = docComment(f.comments, f.stageName);
    return {
      ...(f.stageName ? { name: f.stageName } : {}),
      ...(i === froms.length - 1 ? { default: true } : {}),
      ...(description ? { description } : {}),
      base: f.image,
      ...(f.platform ? { platform: f.platform } : {}),
      location: { sourceIndex: 0, ranges: [{ start: { line: f.location.line }, end: { line: f.location.endLine ?? f.location.line } }] },
    };
  });
  return { targets, sources: [Buffer.from(text).toString('base64')] };
}

/** BuildKit's getDocComment: the rest of the first comment line above FROM that starts with `NAME `. */
function docComment(comments: readonly string[], name: string | undefined): string | undefined {
  if (!name) return undefined;
  for (const line of comments) if (line.startsWith(`${name} `)) return line.slice(name.length + 1);
  return undefined;
}

/** buildx's table: TARGET and DESCRIPTION, the default one marked. */
export function formatTargets(list: TargetList): string {
  const rows = list.targets.map((t) => [t.name ? `${t.name}${t.default ? ' (default)' : ''}` : t.default ? '(default)' : '', t.description ?? '']);
  const width = Math.max('TARGET'.length, ...rows.map((r) => r[0]!.length)) + 1;
  return [['TARGET', 'DESCRIPTION'], ...rows].map(([a, b]) => `${a!.padEnd(width)}${b}`.trimEnd() + '\n').join('');
}

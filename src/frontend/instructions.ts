import { BuildError, type SourceLocation } from '../errors.js';
import { FlagError, parseFlags, type FlagSpec, type ParsedFlags } from './flags.js';
import type { RawInstruction } from './parse.js';
import { chompHeredocContent, parseHeredocToken } from './heredoc.js';
import { parseDevice } from './device.js';
import { extractFlags, parseJsonArray, parseWords, splitFields } from './words.js';

/**
 * Raw instructions → a typed union (BuildKit instructions/parse.go). Words that BuildKit expands
 * later (ENV/ARG/LABEL values, COPY paths, …) are kept unexpanded here; the converters expand
 * them with the stage's environment.
 */

/** Shell form keeps one string (the command line); exec form keeps the argv. */
export interface CommandLine {
  readonly prependShell: boolean;
  readonly args: readonly string[];
}

export interface KeyValue {
  readonly key: string;
  readonly value: string;
}

export interface ArgDecl {
  readonly key: string;
  readonly value?: string;
}

/** COPY/ADD `<<EOF` source: `data` already chomped for `<<-`; `path` is the delimiter name. */
export interface SourceContent {
  readonly path: string;
  readonly data: string;
  /** Unquoted delimiter: the body is expanded with the stage's ARG/ENV values. */
  readonly expand: boolean;
}

/** RUN heredoc body as written (not chomped; `chomp` says whether `<<-` was used). */
export interface InlineFile {
  readonly name: string;
  readonly data: string;
  readonly chomp: boolean;
}

interface Base {
  readonly location: SourceLocation;
  /** The instruction as written (continuations joined). */
  readonly original: string;
  /** Arguments text after the keyword, flags included. */
  readonly rest: string;
  /** Comment lines directly above the instruction. */
  readonly comments: readonly string[];
}

export type Instruction =
  | (Base & { kind: 'FROM'; image: string; stageName?: string; platform?: string })
  | (Base & { kind: 'RUN'; cmd: CommandLine; network: string; mounts: readonly string[]; security: string; flagsUsed: readonly string[]; files: readonly InlineFile[] })
  | (Base & { kind: 'CMD' | 'ENTRYPOINT'; cmd: CommandLine })
  | (Base & { kind: 'ENV'; pairs: readonly KeyValue[] })
  | (Base & { kind: 'LABEL'; pairs: readonly KeyValue[] })
  | (Base & { kind: 'ARG'; args: readonly ArgDecl[] })
  | (Base & { kind: 'MAINTAINER'; maintainer: string })
  | (Base & { kind: 'EXPOSE'; ports: readonly string[] })
  | (Base & { kind: 'VOLUME'; volumes: readonly string[] })
  | (Base & { kind: 'USER'; user: string })
  | (Base & { kind: 'WORKDIR'; path: string })
  | (Base & { kind: 'STOPSIGNAL'; signal: string })
  | (Base & { kind: 'HEALTHCHECK'; test: readonly string[]; interval?: string; timeout?: string; startPeriod?: string; startInterval?: string; retries?: string })
  | (Base & { kind: 'SHELL'; shell: readonly string[] })
  | (Base & { kind: 'ONBUILD'; expression: string })
  | (Base & { kind: 'COPY' | 'ADD'; sources: readonly string[]; sourceContents: readonly SourceContent[]; dest: string; from?: string; chown?: string; chmod?: string; link: boolean; excludes: readonly string[]; parents: boolean; checksum?: string; unpack?: boolean });

export type InstructionKind = Instruction['kind'];

const err = (loc: SourceLocation, msg: string): BuildError => new BuildError('INVALID_INSTRUCTION', msg, { location: loc });

/** Parses one raw instruction. Throws BuildError (with location) for invalid input. */
export function parseInstruction(raw: RawInstruction, escapeToken: string): Instruction {
  const loc = raw.location;
  const { flags: flagWords, rest } = extractFlags(raw.rest);
  const base: Base = { location: loc, original: raw.original, rest: raw.rest, comments: raw.comments };
  const flags = (specs: readonly FlagSpec[]): ParsedFlags => {
    try {
      return parseFlags(flagWords, specs);
    } catch (e) {
      if (e instanceof FlagError) throw err(loc, e.message);
      throw e;
    }
  };
  const json = (): string[] | undefined => {
    try {
      return parseJsonArray(rest);
    } catch (e) {
      throw err(loc, (e as Error).message);
    }
  };
  const kw = raw.keyword;
  const exactlyOne = (): string => {
    flags([]);
    if (rest.trim() === '') throw err(loc, `${kw} requires exactly one argument`);
    return rest.trim();
  };
  switch (kw) {
    case 'FROM': {
      const f = flags([{ name: 'platform', type: 'string' }]);
      const args = splitFields(rest);
      if (args.length !== 1 && !(args.length === 3 && args[1]!.toLowerCase() === 'as')) {
        throw err(loc, 'FROM requires either one or three arguments');
      }
      let stageName: string | undefined;
      if (args.length === 3) {
        stageName = args[2]!.toLowerCase();
        if (!/^[a-z][a-z0-9-_.]*$/.test(stageName)) {
          throw err(loc, `invalid name for build stage: "${args[2]}", name can't start with a number or contain symbols`);
        }
      }
      const platform = f.string('platform');
      return { ...base, kind: 'FROM', image: args[0]!, stageName, platform: platform === '' ? undefined : platform };
    }
    case 'RUN': {
      const f = flags([
        { name: 'network', type: 'string', default: 'default' },
        { name: 'mount', type: 'strings' },
        { name: 'security', type: 'string', default: 'sandbox' },
        { name: 'device', type: 'strings' },
      ]);
      for (const d of f.strings('device')) {
        try {
          parseDevice(d);
        } catch (e) {
          throw err(loc, (e as Error).message);
        }
      }
      const network = f.string('network');
      if (!['default', 'none', 'host'].includes(network)) throw err(loc, `unsupported network mode ${JSON.stringify(network)}`);
      const security = f.string('security');
      if (!['sandbox', 'insecure'].includes(security)) throw err(loc, `unsupported security mode ${JSON.stringify(security)}`);
      const argv = json();
      const files = argv ? [] : raw.heredocs.map((h) => ({ name: h.name, data: h.content, chomp: h.chomp }));
      return { ...base, kind: 'RUN', cmd: commandLine(argv, rest, kw, loc), network, mounts: f.strings('mount'), security, flagsUsed: f.used, files };
    }
    case 'CMD':
    case 'ENTRYPOINT':
      flags([]);
      return { ...base, kind: kw, cmd: commandLine(json(), rest, kw, loc, true) };
    case 'ENV':
    case 'LABEL': {
      flags([]);
      return { ...base, kind: kw, pairs: parseNameValues(rest, kw, escapeToken, loc) };
    }
    case 'ARG': {
      flags([]);
      const words = parseWords(rest, escapeToken);
      if (words.length === 0) throw err(loc, 'ARG requires at least one argument');
      return {
        ...base,
        kind: 'ARG',
        args: words.map((w) => {
          const eq = w.indexOf('=');
          if (eq < 0) return { key: w };
          if (eq === 0) throw err(loc, 'ARG names can not be blank');
          return { key: w.slice(0, eq), value: w.slice(eq + 1) };
        }),
      };
    }
    case 'MAINTAINER':
      return { ...base, kind: 'MAINTAINER', maintainer: exactlyOne() };
    case 'USER':
      return { ...base, kind: 'USER', user: exactlyOne() };
    case 'WORKDIR':
      return { ...base, kind: 'WORKDIR', path: exactlyOne() };
    case 'STOPSIGNAL':
      return { ...base, kind: 'STOPSIGNAL', signal: exactlyOne() };
    case 'EXPOSE': {
      flags([]);
      const ports = splitFields(rest);
      if (ports.length === 0) throw err(loc, 'EXPOSE requires at least one argument');
      return { ...base, kind: 'EXPOSE', ports };
    }
    case 'VOLUME': {
      flags([]);
      const vols = json() ?? splitFields(rest);
      if (vols.length === 0) throw err(loc, 'VOLUME requires at least one argument');
      for (const v of vols) if (v.trim() === '') throw err(loc, 'VOLUME specified can not be an empty string');
      return { ...base, kind: 'VOLUME', volumes: vols.map((v) => v.trim()) };
    }
    case 'SHELL': {
      flags([]);
      const shell = json();
      if (!shell) throw err(loc, 'SHELL requires the arguments to be in JSON form');
      if (shell.length === 0) throw err(loc, 'SHELL requires at least one argument');
      return { ...base, kind: 'SHELL', shell };
    }
    case 'ONBUILD': {
      flags([]);
      const expr = rest.trim();
      if (expr === '') throw err(loc, 'ONBUILD requires at least one argument');
      const trigger = expr.split(/\s/u, 1)[0]!.toUpperCase();
      if (trigger === 'ONBUILD') throw err(loc, 'Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed');
      if (trigger === 'FROM' || trigger === 'MAINTAINER') throw err(loc, `${trigger} isn't allowed as an ONBUILD trigger`);
      // The trigger keeps its heredoc bodies, each followed by its terminator, so the child's
      // parser reads it back whole (BuildKit parseOnBuild, instructions/parse.go).
      let stored = expr;
      for (const h of raw.heredocs) stored += `\n${h.content}${h.name}`;
      return { ...base, kind: 'ONBUILD', expression: stored };
    }
    case 'HEALTHCHECK':
      return parseHealthcheck(base, flagWords, rest, loc, flags);
    case 'COPY':
    case 'ADD': {
      const specs: FlagSpec[] = [
        { name: 'chown', type: 'string' },
        { name: 'chmod', type: 'string' },
        { name: 'link', type: 'bool' },
        { name: 'exclude', type: 'strings' },
      ];
      if (kw === 'COPY') specs.push({ name: 'from', type: 'string' }, { name: 'parents', type: 'bool' });
      else specs.push({ name: 'keep-git-dir', type: 'bool' }, { name: 'checksum', type: 'string' }, { name: 'unpack', type: 'bool' });
      const f = flags(specs);
      const args = json() ?? splitFields(rest);
      if (args.length < 2) {
        throw err(loc, `${kw} requires at least two arguments, but only one was provided. Destination could not be determined`);
      }
      const from = f.used.includes('from') ? f.string('from') : undefined;
      const dest = args[args.length - 1]!;
      const heredoc = (w: string): ReturnType<typeof parseHeredocToken> => {
        try {
          return parseHeredocToken(w);
        } catch {
          return undefined;
        }
      };
      if (heredoc(dest)) throw err(loc, `${kw} cannot accept a heredoc as a destination`);
      const sources: string[] = [];
      const sourceContents: SourceContent[] = [];
      const bodies = new Map(raw.heredocs.map((h) => [h.name, h]));
      for (const src of args.slice(0, -1)) {
        const h = raw.heredocs.length > 0 ? heredoc(src) : undefined;
        if (!h) {
          sources.push(src);
          continue;
        }
        const content = bodies.get(h.name)?.content ?? '';
        sourceContents.push({ path: h.name, data: h.chomp ? chompHeredocContent(content) : content, expand: h.expand });
      }
      return {
        ...base,
        kind: kw,
        sources,
        sourceContents,
        dest,
        parents: kw === 'COPY' && f.bool('parents'),
        from,
        chown: f.string('chown') || undefined,
        chmod: f.string('chmod') || undefined,
        link: f.bool('link'),
        excludes: f.strings('exclude'),
        // ADD only; absent when not given (the default differs for URLs and local files).
        ...(f.used.includes('checksum') ? { checksum: f.string('checksum') } : {}),
        ...(f.used.includes('unpack') ? { unpack: f.bool('unpack') } : {}),
      };
    }
    default:
      throw new BuildError('UNKNOWN_INSTRUCTION', `unknown instruction: ${kw}`, { location: loc });
  }
}

/**
 * The doc comment for `name` among the comment lines above an instruction: the text after
 * `name ` on the first line that starts with it (`# foo sets foo` documents `foo`), else ''.
 */
export function docComment(comments: readonly string[], name: string): string {
  if (name === '') return '';
  const line = comments.find((c) => c.startsWith(`${name} `));
  return line === undefined ? '' : line.slice(name.length + 1);
}

/** BuildKit handleJSONArgs: exec form keeps the argv; shell form joins it with single spaces. */
export function handleJsonArgs(args: readonly string[], json: boolean): string[] {
  if (args.length === 0) return [];
  return json ? [...args] : [args.join(' ')];
}

function commandLine(argv: string[] | undefined, rest: string, kw: string, loc: SourceLocation, allowEmpty = false): CommandLine {
  if (argv) return { prependShell: false, args: argv };
  if (rest.trim() === '' && !allowEmpty) throw err(loc, `${kw} requires at least one argument`);
  return { prependShell: true, args: [rest] };
}

/** ENV/LABEL: `k=v ...` pairs, or the legacy `k value with spaces` form. */
function parseNameValues(rest: string, kw: string, escapeToken: string, loc: SourceLocation): KeyValue[] {
  const words = parseWords(rest, escapeToken);
  if (words.length === 0) throw err(loc, `${kw} requires at least one argument`);
  if (!words[0]!.includes('=')) {
    const m = /^(\S+)\s+([\s\S]*)$/u.exec(rest.trim());
    if (!m) throw err(loc, `${kw} must have two arguments`);
    return [{ key: m[1]!, value: m[2]! }];
  }
  return words.map((w) => {
    const eq = w.indexOf('=');
    if (eq < 0) throw err(loc, `Syntax error - can't find = in ${JSON.stringify(w)}. Must be of the form: name=value`);
    if (eq === 0) throw err(loc, `${kw} names can not be blank`);
    return { key: w.slice(0, eq), value: w.slice(eq + 1) };
  });
}

function parseHealthcheck(base: Base, _flagWords: string[], rest: string, loc: SourceLocation, flags: (s: readonly FlagSpec[]) => ParsedFlags): Instruction {
  const trimmed = rest.trim();
  if (trimmed === '') throw err(loc, 'HEALTHCHECK requires at least one argument');
  const m = /^(\S+)\s*([\s\S]*)$/u.exec(trimmed)!;
  const typ = m[1]!.toUpperCase();
  const after = m[2]!;
  if (typ === 'NONE') {
    if (after.trim() !== '') throw err(loc, 'HEALTHCHECK NONE takes no arguments');
    flags([]);
    return { ...base, kind: 'HEALTHCHECK', test: ['NONE'] };
  }
  if (typ !== 'CMD') throw err(loc, `Unknown type "${typ}" in HEALTHCHECK (try CMD)`);
  const f = flags([
    { name: 'interval', type: 'string' },
    { name: 'timeout', type: 'string' },
    { name: 'start-period', type: 'string' },
    { name: 'start-interval', type: 'string' },
    { name: 'retries', type: 'string' },
  ]);
  let argv: string[] | undefined;
  try {
    argv = parseJsonArray(after);
  } catch (e) {
    throw err(loc, (e as Error).message);
  }
  const test = argv ? ['CMD', ...argv] : after.trim() === '' ? [] : ['CMD-SHELL', after];
  if (test.length <= 1) throw err(loc, 'Missing command after HEALTHCHECK CMD');
  const opt = (n: string): string | undefined => (f.used.includes(n) ? f.string(n) : undefined);
  return {
    ...base,
    kind: 'HEALTHCHECK',
    test,
    interval: opt('interval'),
    timeout: opt('timeout'),
    startPeriod: opt('start-period'),
    startInterval: opt('start-interval'),
    retries: opt('retries'),
  };
}

import { BuildError, type SourceLocation } from '../errors.js';
import type { Instruction } from './instructions.js';
import type { ShellLexer } from './shell-lexer.js';

/** 9999-12-31T23:59:59Z: the last second an RFC 3339 timestamp can hold. */
export const MAX_EPOCH = 253402300799;

/** What a SOURCE_DATE_EPOCH value asks for; `other` is a stage name or a mistake, the caller tells. */
export type EpochValue = { readonly kind: 'seconds'; readonly date: Date } | { readonly kind: 'context' } | { readonly kind: 'other' };

/**
 * BuildKit's forms: whole seconds since 1970, or `context` (the main context's source time).
 * Unlike BuildKit (Go's ParseInt) a sign is refused: a negative epoch is never what a
 * reproducible build meant, and a year past 9999 can't be written in the config.
 */
export function parseEpochValue(value: string): EpochValue {
  if (value === 'context') return { kind: 'context' };
  if (/^\d{1,15}$/.test(value) && Number(value) <= MAX_EPOCH) return { kind: 'seconds', date: new Date(Number(value) * 1000) };
  return { kind: 'other' };
}

/** The end of every "bad value" message, so each source's error reads the same. */
export function epochExpectation(value: string, words = '"context"'): string {
  return `expected a whole number of seconds since 1970-01-01 (at most ${MAX_EPOCH}) or ${words}, got ${JSON.stringify(value)}`;
}

export interface EpochInputs {
  /** `--build-arg`s (the CLI has put the flag and the environment's value there, as buildx does). */
  readonly buildArgs: Readonly<Record<string, string>>;
  /** The global ARGs as evaluated (build args already applied). */
  readonly metaArgs: ReadonlyMap<string, string | undefined>;
  readonly metaArgInstructions: readonly Extract<Instruction, { kind: 'ARG' }>[];
  readonly stages: readonly EpochStage[];
  readonly lexer: ShellLexer;
  /** The main context's source time, asked only for `context`; undefined: none (no epoch). */
  readonly contextTime?: () => Promise<Date | undefined>;
  /** An http(s) URL's Last-Modified (else its archive's newest file), asked only for a source stage. */
  readonly urlTime?: (url: string) => Promise<Date | undefined>;
}

interface EpochStage {
  readonly name?: string;
  readonly from: { readonly image: string; readonly location: SourceLocation };
  readonly commands: readonly Instruction[];
}

const KEY = 'SOURCE_DATE_EPOCH';

/**
 * The build's SOURCE_DATE_EPOCH as BuildKit's dockerfile2llb resolves it: the build arg if given
 * (an empty one means none, even over a default), else the global `ARG SOURCE_DATE_EPOCH=…`
 * before the first FROM. A build-arg mistake is a usage error; a Dockerfile default's is located
 * at its ARG line. A stage name is a source stage (see sourceStageUrl); BuildKit's named
 * contexts (`--build-context NAME`) are not looked up as sources.
 */
export async function resolveSourceDateEpoch(inp: EpochInputs): Promise<Date | undefined> {
  const fromArg = Object.prototype.hasOwnProperty.call(inp.buildArgs, KEY);
  const value = fromArg ? inp.buildArgs[KEY]! : inp.metaArgs.get(KEY);
  if (value === undefined || value === '') return undefined;
  // Where the value was written: the last global ARG that gave SOURCE_DATE_EPOCH a default.
  const location = fromArg ? undefined : [...inp.metaArgInstructions].reverse().find((ins) => ins.args.some((a) => a.key === KEY && a.value !== undefined))?.location;
  const source = fromArg ? `--build-arg ${KEY}` : `ARG ${KEY}`;
  const parsed = parseEpochValue(value);
  if (parsed.kind === 'seconds') return parsed.date;
  if (parsed.kind === 'context') {
    if (!inp.contextTime) throw new BuildError('USAGE', `${source}=context: this build's context has no source time`, { location });
    try {
      // No source time (a directory outside git, an undated non-archive URL): no epoch, as BuildKit.
      return await inp.contextTime();
    } catch (e) {
      throw e instanceof BuildError ? e.withLocation(location) : e;
    }
  }
  const stage = inp.stages.find((s) => s.name !== undefined && s.name === value.toLowerCase());
  if (stage) {
    const url = sourceStageUrl(stage, inp);
    if (!inp.urlTime) throw new BuildError('USAGE', `${source}=${value}: this build can't ask ${url} for its time`, { location: stage.from.location });
    try {
      return await inp.urlTime(url);
    } catch (e) {
      throw e instanceof BuildError ? e.withLocation(location ?? stage.from.location) : e;
    }
  }
  // BuildKit's words first ("invalid SOURCE_DATE_EPOCH: <value>"), then where it came from and what fits.
  throw new BuildError(fromArg ? 'USAGE' : 'INVALID_INSTRUCTION', `invalid ${KEY}: ${value} (${source}: ${epochExpectation(value, '"context" or the name of a source stage')})`, {
    location,
  });
}

/**
 * The build args and global ARGs with the resolved epoch in place of the value that named it,
 * as BuildKit's setBuildArgValue: `ARG SOURCE_DATE_EPOCH` in a stage (and so RUN) sees seconds.
 */
export function withResolvedEpoch(
  epoch: Date | undefined,
  buildArgs: Readonly<Record<string, string>>,
  metaArgs: Map<string, string | undefined>,
): Readonly<Record<string, string>> {
  if (!epoch) return buildArgs;
  const seconds = String(Math.floor(epoch.getTime() / 1000));
  if (metaArgs.has(KEY)) metaArgs.set(KEY, seconds);
  return Object.prototype.hasOwnProperty.call(buildArgs, KEY) ? { ...buildArgs, [KEY]: seconds } : buildArgs;
}

/**
 * The URL of a SOURCE_DATE_EPOCH source stage, checked as BuildKit checks it: `FROM scratch`,
 * then only ARGs and exactly one ADD of one remote source. BuildKit also takes a git source;
 * tsbuild's ADD has none, so only http(s) is accepted (its Last-Modified is the time).
 */
function sourceStageUrl(stage: EpochStage, inp: EpochInputs): string {
  // BuildKit's messages ("SOURCE_DATE_EPOCH stage must use FROM scratch", …), naming the stage after.
  const fail = (msg: string, loc = stage.from.location) => new BuildError('INVALID_INSTRUCTION', `SOURCE_DATE_EPOCH stage ${msg} (stage ${stage.name})`, { location: loc });
  const env = new Map(inp.metaArgs);
  env.delete(KEY);
  const get = { get: (k: string) => env.get(k) };
  const expand = (word: string, loc: SourceLocation) => {
    try {
      return inp.lexer.processWord(word, get);
    } catch (e) {
      throw fail(e instanceof Error ? e.message : String(e), loc);
    }
  };
  if (expand(stage.from.image, stage.from.location) !== 'scratch') throw fail('must use FROM scratch');
  let url: string | undefined;
  for (const ins of stage.commands) {
    if (ins.kind === 'ARG') {
      for (const a of ins.args) {
        if (Object.prototype.hasOwnProperty.call(inp.buildArgs, a.key)) env.set(a.key, inp.buildArgs[a.key]);
        else if (a.value !== undefined) env.set(a.key, expand(a.value, ins.location));
      }
    } else if (ins.kind === 'ADD') {
      if (url !== undefined) throw fail('must contain exactly one remote ADD', ins.location);
      if (ins.sourceContents.length !== 0 || ins.sources.length !== 1) throw fail('must contain exactly one remote ADD source', ins.location);
      url = expand(ins.sources[0]!, ins.location);
      if (!/^https?:\/\//i.test(url)) throw fail(`the ADD source must be an http(s) URL (tsbuild's ADD has no git sources), not ${JSON.stringify(url)}`, ins.location);
    } else throw fail(`does not meet source-only requirements: unsupported ${ins.kind} instruction`, ins.location);
  }
  if (url === undefined) throw fail('must contain exactly one remote ADD');
  return url;
}

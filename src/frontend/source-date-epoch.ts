import { BuildError, type SourceLocation } from '../errors.js';
import type { Instruction } from './instructions.js';

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
  readonly stages: readonly { readonly name?: string; readonly from: { readonly location: SourceLocation } }[];
  /** The main context's source time, asked only for `context`. */
  readonly contextTime?: () => Promise<Date>;
}

const KEY = 'SOURCE_DATE_EPOCH';

/**
 * The build's SOURCE_DATE_EPOCH as BuildKit's dockerfile2llb resolves it: the build arg if given
 * (an empty one means none, even over a default), else the global `ARG SOURCE_DATE_EPOCH=…`
 * before the first FROM. A build-arg mistake is a usage error; a Dockerfile default's is located
 * at its ARG line. The stage-name form (`FROM scratch` + one remote ADD) is not supported.
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
      return await inp.contextTime();
    } catch (e) {
      throw e instanceof BuildError ? e.withLocation(location) : e;
    }
  }
  const stage = inp.stages.find((s) => s.name !== undefined && s.name === value.toLowerCase());
  if (stage) {
    throw new BuildError('USAGE', `${source}=${value}: taking the time from a stage's remote source is not supported by tsbuild`, {
      location: location ?? stage.from.location,
      hint: 'give a number of seconds since 1970, or context (the time of the last git commit of the build context)',
    });
  }
  throw new BuildError(fromArg ? 'USAGE' : 'INVALID_INSTRUCTION', `invalid ${KEY}: ${source}: ${epochExpectation(value)}`, { location });
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

import { BuildError } from '../errors.js';

/** 9999-12-31T23:59:59Z: the last second an RFC 3339 timestamp can hold. */
const MAX_EPOCH = 253402300799;

/**
 * SOURCE_DATE_EPOCH as buildx passes it (`--build-arg`, which wins) or as the environment sets
 * it (reproducible-builds.org); undefined when neither does. Anything but a whole number of
 * seconds since 1970 is a usage error naming where it came from.
 */
export function sourceDateEpoch(buildArgs: Readonly<Record<string, string>>, env: NodeJS.ProcessEnv): Date | undefined {
  const fromArg = buildArgs.SOURCE_DATE_EPOCH;
  const [value, from] = fromArg !== undefined ? [fromArg, '--build-arg SOURCE_DATE_EPOCH'] : [env.SOURCE_DATE_EPOCH, '$SOURCE_DATE_EPOCH'];
  if (value === undefined || value === '') return undefined;
  if (!/^\d+$/.test(value) || Number(value) > MAX_EPOCH) {
    throw new BuildError('USAGE', `${from}: expected a whole number of seconds since 1970-01-01 (at most ${MAX_EPOCH}), got ${JSON.stringify(value)}`);
  }
  return new Date(Number(value) * 1000);
}

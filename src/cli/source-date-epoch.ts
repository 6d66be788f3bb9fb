import { BuildError } from '../errors.js';
import { epochExpectation, parseEpochValue } from '../frontend/source-date-epoch.js';

/** What BuildKit accepts as a stage name. */
const STAGE_NAME = /^[a-z][a-z0-9-_.]*$/i;

/**
 * The build args with SOURCE_DATE_EPOCH from, in this order: `--source-date-epoch` (as buildah
 * and podman have it; `git` is another name for `context`), `--build-arg`, the environment
 * (reproducible-builds.org; buildx and buildctl pass it on as the build arg, so RUN after
 * `ARG SOURCE_DATE_EPOCH` sees it). Without any of them, the Dockerfile's global ARG default
 * may still give one (resolved when the Dockerfile is compiled). A value that can never be
 * valid is a usage error naming where it came from; an empty --build-arg stays, meaning none.
 * Only --build-arg may name a source stage: the flag and the environment mean a time.
 */
export function withSourceDateEpoch(buildArgs: Readonly<Record<string, string>>, flag: string | undefined, env: NodeJS.ProcessEnv): Record<string, string> {
  const out = { ...buildArgs };
  let value: string | undefined;
  let from: string;
  if (flag !== undefined) [value, from] = [flag === 'git' ? 'context' : flag, '--source-date-epoch'];
  else if (out.SOURCE_DATE_EPOCH !== undefined) [value, from] = [out.SOURCE_DATE_EPOCH, '--build-arg SOURCE_DATE_EPOCH'];
  else [value, from] = [env.SOURCE_DATE_EPOCH || undefined, '$SOURCE_DATE_EPOCH'];
  if (value === undefined || (value === '' && flag === undefined)) return out;
  // A build arg may also name a source stage (as in BuildKit); the compile checks that one.
  const stageName = from === '--build-arg SOURCE_DATE_EPOCH' && STAGE_NAME.test(value);
  if (parseEpochValue(value).kind === 'other' && !stageName) {
    throw new BuildError('USAGE', `${from}: ${flag !== undefined ? epochExpectation(flag, '"context" or "git"') : epochExpectation(value)}`);
  }
  out.SOURCE_DATE_EPOCH = value;
  return out;
}

/**
 * SOURCE_DATE_EPOCH=context for a context the CLI fetched or read from standard input: its
 * source time (a git URL's commit, an http URL's Last-Modified, an archive's newest file), asked
 * only when the build needs it. Without one there is no epoch, as in BuildKit (a Dockerfile
 * alone has no time), unless `strict` (`--source-date-epoch`, tsbuild's own flag, which asks
 * for a time): then a usage error says there is none.
 */
export function fetchedContextTime(context: string, time: (() => Promise<Date | undefined>) | undefined, strict: boolean): () => Promise<Date | undefined> {
  const what = context === '-' ? 'a context from standard input' : context;
  return async () => {
    const t = await time?.();
    if (t || !strict) return t;
    throw new BuildError('USAGE', `SOURCE_DATE_EPOCH=context: ${what} has no source time (a git commit, an HTTP Last-Modified, an archive's file times)`, {
      hint: 'give a number of seconds instead (--source-date-epoch N)',
    });
  };
}

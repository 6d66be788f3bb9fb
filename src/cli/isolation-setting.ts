import { BuildError } from '../errors.js';
import { ISOLATIONS, type Isolation } from '../runtime/isolation-modes.js';
import type { GlobalOptions } from './globals.js';

/** `--isolation`, else $TSBUILD_ISOLATION, else tsbuild.toml's `[build] isolation`, else auto. */
export function isolationSetting(globals: GlobalOptions, env: NodeJS.ProcessEnv): Isolation | 'auto' {
  const [value, from] =
    globals.isolation !== undefined ? [globals.isolation, '--isolation'] : env.TSBUILD_ISOLATION ? [env.TSBUILD_ISOLATION, '$TSBUILD_ISOLATION'] : [globals.settings?.config.build?.isolation ?? 'auto', 'tsbuild.toml build.isolation'];
  if (!(ISOLATIONS as readonly string[]).includes(value)) {
    throw new BuildError('USAGE', `${from}: expected one of ${ISOLATIONS.join(', ')}, got ${JSON.stringify(value)}`);
  }
  return value as Isolation | 'auto';
}

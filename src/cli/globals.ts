import type { LoadedConfig } from './config-file.js';

/** Options accepted before the verb as well as after it (`tsbuild --root /tmp/r build .`). */
export interface GlobalOptions {
  /** After main() loads the config: the resolved state root (flag, $TSBUILD_ROOT, config `root`, default). */
  root?: string;
  config?: string;
  /** `--isolation` as given (checked by isolationSetting). */
  isolation?: string;
  debug: boolean;
  /** The config file as loaded by main() before any verb runs (tsbuild.toml). */
  settings?: LoadedConfig;
}

const VALUED = new Map<string, 'root' | 'config' | 'isolation'>([
  ['--root', 'root'],
  ['--config', 'config'],
  ['--isolation', 'isolation'],
]);

/**
 * Takes the global options out of argv, wherever they stand, so every verb sees them without
 * declaring them. Commander alone would only accept them on one side of the verb.
 */
export function extractGlobals(argv: readonly string[]): { globals: GlobalOptions; rest: string[] } {
  const globals: GlobalOptions = { debug: false };
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      rest.push(...argv.slice(i));
      break;
    }
    const [name, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    if (name === '--debug' && inline === undefined) globals.debug = true;
    else if (VALUED.has(name)) {
      const value = inline ?? argv[++i];
      if (value === undefined) rest.push(a); // let the parser report the missing value
      else globals[VALUED.get(name)!] = value;
    } else rest.push(a);
  }
  return { globals, rest };
}

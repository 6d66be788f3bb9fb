import { Command, Option } from 'commander';
import type { LoadedConfig } from './config-file.js';
import { DEFAULT_CONFIG_PATH, expansionLimits, networkPolicy } from './config-file.js';
import type { GlobalOptions } from './globals.js';
import { stateRoot } from './state-root.js';

/** One effective setting and where its value came from. */
export interface EffectiveSetting {
  readonly key: string;
  readonly value: unknown;
  /** `--root`, `$TSBUILD_ROOT`, `/etc/tsbuild/tsbuild.toml:3`, or `default`. */
  readonly source: string;
}

/**
 * The settings tsbuild runs with, each with its source, in the precedence order every verb
 * applies: flag, then environment, then config file, then built-in default. `rootFlag` is
 * `--root` as given (before main resolves it).
 */
export function effectiveSettings(rootFlag: string | undefined, configFlag: string | undefined, env: NodeJS.ProcessEnv, loaded: LoadedConfig): EffectiveSetting[] {
  const c = loaded.config;
  const fromFile = (key: string) => `${loaded.path}:${loaded.lines.get(key) ?? '?'}`;
  const out: EffectiveSetting[] = [];
  out.push({
    key: 'config-file',
    value: loaded.path ?? null,
    source: configFlag ? '--config' : env.TSBUILD_CONFIG ? '$TSBUILD_CONFIG' : loaded.path ? 'default' : `default (${DEFAULT_CONFIG_PATH} does not exist)`,
  });
  out.push({
    key: 'root',
    value: stateRoot(rootFlag, env, c.root),
    source: rootFlag ? '--root' : env.TSBUILD_ROOT ? '$TSBUILD_ROOT' : c.root ? fromFile('root') : 'default',
  });
  out.push(c['max-parallelism'] !== undefined ? { key: 'max-parallelism', value: c['max-parallelism'], source: fromFile('max-parallelism') } : { key: 'max-parallelism', value: 'unlimited', source: 'default (as BuildKit)' });
  out.push(c.progress !== undefined ? { key: 'progress', value: c.progress, source: fromFile('progress') } : { key: 'progress', value: 'auto', source: 'default' });
  for (const k of ['keep-storage', 'keep-duration'] as const) {
    const v = c.gc?.[k];
    out.push(v !== undefined ? { key: `gc.${k}`, value: v, source: fromFile(`gc.${k}`) } : { key: `gc.${k}`, value: null, source: 'default (unlimited)' });
  }
  const net = networkPolicy({});
  const netDefaults = { 'connect-timeout': net.timeouts.connectMs, 'response-timeout': net.timeouts.responseMs, 'idle-timeout': net.timeouts.idleMs, 'retry-budget': net.retryBudgetMs };
  for (const [k, ms] of Object.entries(netDefaults) as [keyof typeof netDefaults, number][]) {
    const v = c.network?.[k];
    out.push(v !== undefined ? { key: `network.${k}`, value: v, source: fromFile(`network.${k}`) } : { key: `network.${k}`, value: `${ms / 1000}s`, source: 'default' });
  }
  const unpack = expansionLimits(c);
  const unpackDefaults = { 'max-expanded-bytes': unpack.maxExpandedBytes, 'max-expansion-ratio': unpack.maxExpansionRatio, 'max-entries': unpack.maxEntries };
  for (const k of ['max-expanded-bytes', 'max-expansion-ratio', 'max-entries'] as const) {
    const v = c.unpack?.[k];
    out.push(v !== undefined ? { key: `unpack.${k}`, value: v, source: fromFile(`unpack.${k}`) } : { key: `unpack.${k}`, value: unpackDefaults[k], source: 'default' });
  }
  for (const [host, r] of Object.entries(c.registry ?? {})) {
    for (const k of ['mirrors', 'insecure'] as const) {
      const key = `registry.${JSON.stringify(host)}.${k}`;
      if (r[k] !== undefined) out.push({ key, value: r[k], source: fromFile(key) });
    }
  }
  return out;
}

/** `tsbuild config`: prints the effective settings and their sources (`--format json` for tools). */
export function configCommand(globals: GlobalOptions, rawRoot: string | undefined, setExit: (code: number) => void): Command {
  return new Command('config')
    .description('print the effective configuration and where each value comes from')
    .addOption(new Option('--format <format>', 'output format').choices(['text', 'json']).default('text'))
    .action((flags: { format: string }) => {
      const settings = effectiveSettings(rawRoot, globals.config, process.env, globals.settings ?? { config: {}, lines: new Map() });
      if (flags.format === 'json') process.stdout.write(JSON.stringify(settings, null, 2) + '\n');
      else {
        const rows = settings.map((s) => [s.key, s.value === null ? '(unset)' : JSON.stringify(s.value), s.source]);
        const w0 = Math.max(...rows.map((r) => r[0]!.length));
        const w1 = Math.max(...rows.map((r) => r[1]!.length));
        process.stdout.write(rows.map(([k, v, src]) => `${k!.padEnd(w0)} = ${v!.padEnd(w1)}  # ${src}\n`).join(''));
      }
      setExit(0);
    });
}

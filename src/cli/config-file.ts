import { readFileSync } from 'node:fs';
import { parseByteSize } from '../byte-size.js';
import { parseDurationMs } from './units.js';
import type { TsbuildConfig } from '../../schemas/types/config.js';
import { BuildError } from '../errors.js';
import { DEFAULT_HTTP_TIMEOUTS, type HttpTimeouts } from '../remote/http-timeouts.js';
import { DEFAULT_RETRY } from '../remote/transport.js';
import { DEFAULT_EXPANSION_LIMITS, type ExpansionLimits } from '../oci/layer/expansion-guard.js';

export type { TsbuildConfig } from '../../schemas/types/config.js';

/** Where the config file is looked for when neither --config nor $TSBUILD_CONFIG names one. */
export const DEFAULT_CONFIG_PATH = '/etc/tsbuild/tsbuild.toml';

/** A config file as read: its values, the file, and the line each key was set on. */
export interface LoadedConfig {
  readonly config: TsbuildConfig;
  /** The file read, or undefined when the default file does not exist. */
  readonly path?: string;
  /** Dotted key (`gc.keep-storage`, `registry."docker.io".mirrors`) → 1-based line. */
  readonly lines: ReadonlyMap<string, number>;
}

/**
 * Reads tsbuild.toml from `--config`, else `$TSBUILD_CONFIG`, else DEFAULT_CONFIG_PATH. A file
 * named by flag or environment must exist; the default one may be absent (empty config). TOML
 * syntax errors, unknown keys and wrong types are BuildError('USAGE') with `file:line`, checked
 * against schemas/tsbuild/config.schema.json's rules.
 */
export async function loadConfig(flag: string | undefined, env: NodeJS.ProcessEnv): Promise<LoadedConfig> {
  const explicit = flag ?? (env.TSBUILD_CONFIG || undefined);
  const path = explicit ?? DEFAULT_CONFIG_PATH;
  let text: string;
  try {
    // On this thread: nothing else runs before the config is read.
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !explicit) return { config: {}, lines: new Map() };
    throw new BuildError('USAGE', `config file ${path}: ${code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  // The TOML parser is loaded only when there is a file to parse (most commands have none).
  const { parseConfig } = await import('./config-parse.js');
  return { ...parseConfig(text, path), path };
}

/** The `[network]` table as timeouts and a retry budget, defaults filled in. */
export function networkPolicy(config: TsbuildConfig): { timeouts: HttpTimeouts; retryBudgetMs: number } {
  const n = config.network ?? {};
  const ms = (s: string | undefined, dflt: number) => (s === undefined ? dflt : (parseDurationMs(s) ?? dflt));
  return {
    timeouts: {
      connectMs: ms(n['connect-timeout'], DEFAULT_HTTP_TIMEOUTS.connectMs),
      responseMs: ms(n['response-timeout'], DEFAULT_HTTP_TIMEOUTS.responseMs),
      idleMs: ms(n['idle-timeout'], DEFAULT_HTTP_TIMEOUTS.idleMs),
    },
    retryBudgetMs: ms(n['retry-budget'], DEFAULT_RETRY.budgetMs),
  };
}

/** Registry options in the shape registryOptions() takes. */
export function registrySettings(config: TsbuildConfig): { insecure: string[]; mirrors: Record<string, string[]> } {
  const insecure: string[] = [];
  const mirrors: Record<string, string[]> = {};
  for (const [host, r] of Object.entries(config.registry ?? {})) {
    if (r.insecure) insecure.push(host);
    if (r.mirrors?.length) mirrors[host] = r.mirrors;
  }
  return { insecure, mirrors };
}

/** The `[unpack]` table as ExpansionLimits, defaults filled in. */
export function expansionLimits(config: TsbuildConfig): ExpansionLimits {
  const u = config.unpack ?? {};
  const bytes = u['max-expanded-bytes'];
  return {
    maxExpandedBytes: bytes === undefined ? DEFAULT_EXPANSION_LIMITS.maxExpandedBytes : parseByteSize(bytes)!,
    maxExpansionRatio: u['max-expansion-ratio'] ?? DEFAULT_EXPANSION_LIMITS.maxExpansionRatio,
    maxEntries: u['max-entries'] ?? DEFAULT_EXPANSION_LIMITS.maxEntries,
  };
}

/** The `[gc]` policy as prune options: keep-storage in bytes, keep-duration in ms; empty when unset. */
export function gcPolicy(config: TsbuildConfig): { keepStorage?: number; olderThanMs?: number } {
  const size = config.gc?.['keep-storage'];
  const age = config.gc?.['keep-duration'];
  return {
    ...(size === undefined ? {} : { keepStorage: parseByteSize(size) }),
    ...(age === undefined ? {} : { olderThanMs: parseDurationMs(age) }),
  };
}

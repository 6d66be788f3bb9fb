import { homedir } from 'node:os';
import { join } from 'node:path';
import { DockerConfigCredentials } from '../remote/credentials.js';
import type { RegistryOptions } from '../remote/registry-client.js';
import type { HttpTimeouts } from '../remote/http-timeouts.js';
import { DEFAULT_RETRY } from '../remote/transport.js';

/** `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`, as docker reads it. */
export function dockerConfigPath(env: NodeJS.ProcessEnv): string {
  return env.DOCKER_CONFIG ? join(env.DOCKER_CONFIG, 'config.json') : join(env.HOME || homedir(), '.docker', 'config.json');
}

/**
 * Registry client options from the environment: credentials from docker's config.json.
 * Insecure registries, mirrors, timeouts and the retry budget come from tsbuild.toml once the
 * config file is read (and are passed through here).
 */
export function registryOptions(
  env: NodeJS.ProcessEnv,
  config: { insecure?: readonly string[]; mirrors?: Readonly<Record<string, readonly string[]>>; timeouts?: HttpTimeouts; retryBudgetMs?: number } = {},
): RegistryOptions {
  return {
    credentials: new DockerConfigCredentials(dockerConfigPath(env)),
    ...(config.timeouts ? { timeouts: config.timeouts } : {}),
    ...(config.retryBudgetMs !== undefined ? { retry: { ...DEFAULT_RETRY, budgetMs: config.retryBudgetMs } } : {}),
    ...(config.insecure ? { insecure: config.insecure } : {}),
    ...(config.mirrors ? { mirrors: config.mirrors } : {}),
  };
}

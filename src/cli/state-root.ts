import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * DESIGN.md's order: --root, else $TSBUILD_ROOT, else the config file's `root`, else
 * /var/lib/tsbuild for root and $XDG_DATA_HOME/tsbuild otherwise.
 */
export function stateRoot(flag: string | undefined, env: NodeJS.ProcessEnv, configRoot?: string): string {
  if (flag) return flag;
  if (env.TSBUILD_ROOT) return env.TSBUILD_ROOT;
  if (configRoot) return configRoot;
  if (process.getuid?.() === 0) return '/var/lib/tsbuild';
  return join(env.XDG_DATA_HOME || join(homedir(), '.local/share'), 'tsbuild');
}

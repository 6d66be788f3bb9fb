import { homedir } from 'node:os';
import { join } from 'node:path';
import { enteredUserNamespace } from '../runtime/userns-reexec.js';

/**
 * DESIGN.md's order: --root, else $TSBUILD_ROOT, else the config file's `root`, else
 * /var/lib/tsbuild for root and $XDG_DATA_HOME/tsbuild otherwise.
 */
export function stateRoot(flag: string | undefined, env: NodeJS.ProcessEnv, configRoot?: string): string {
  if (flag) return flag;
  if (env.TSBUILD_ROOT) return env.TSBUILD_ROOT;
  if (configRoot) return configRoot;
  // In tsbuild's own user namespace we are uid 0, but the store is the caller's.
  if ((enteredUserNamespace(env)?.outerUid ?? process.getuid?.()) === 0) return '/var/lib/tsbuild';
  return join(env.XDG_DATA_HOME || join(homedir(), '.local/share'), 'tsbuild');
}

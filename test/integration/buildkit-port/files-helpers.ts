import { mkdtemp, lstat } from 'node:fs/promises';
import { join } from 'node:path';
import type { BuildRoot } from '../../helpers/build-root.js';
import { tsbuildOk } from '../../helpers/cli.js';

/** Builds `dir` and exports its root filesystem (`--output type=local`) into a new dir under the work dir. */
export async function localOut(env: BuildRoot, dir: string, extra: readonly string[] = []): Promise<string> {
  const out = await mkdtemp(join(env.work, 'out-'));
  await tsbuildOk(['--root', env.root, 'build', ...extra, '--output', `type=local,dest=${out}`, dir]);
  return out;
}

/** Whether `p` exists (as anything, a dangling symlink too). */
export async function exists(p: string): Promise<boolean> {
  return lstat(p).then(() => true, () => false);
}

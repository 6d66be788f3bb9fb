import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
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

/** A tar of `entries` (paths under `stage`, in that order, not recursed into) written to `out`, by GNU tar. */
export function tarOf(stage: string, entries: readonly string[], out: string, opts: { gzip?: boolean } = {}): Buffer {
  const buf = execFileSync('tar', ['-C', stage, '--no-recursion', '--owner=0', '--group=0', opts.gzip ? '-czf' : '-cf', '-', ...entries]);
  writeFileSync(out, buf);
  return buf;
}

/** Adds `user` (uid and gid `id`) to the image's passwd and group: busybox here has no adduser. */
export function addUser(user: string, id: number): string {
  return `RUN echo '${user}:x:${id}:${id}::/home/${user}:/bin/sh' >> /etc/passwd && echo '${user}:x:${id}:' >> /etc/group`;
}

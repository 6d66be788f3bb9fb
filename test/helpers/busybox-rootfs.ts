import { execFileSync } from 'node:child_process';
import { copyFile, mkdir, symlink, writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';

/** Debian's busybox-static: a static binary that runs in an empty rootfs. */
export const BUSYBOX = '/bin/busybox';

/**
 * Writes a minimal Linux rootfs into `dir`: busybox with a symlink per applet in /bin,
 * /etc/passwd and /etc/group with root, nobody and an `app` user (uid 1000), /tmp (1777).
 * Used to make base images inside tests without any registry.
 */
export async function makeBusyboxRootfs(dir: string): Promise<void> {
  await mkdir(join(dir, 'bin'), { recursive: true });
  await copyFile(BUSYBOX, join(dir, 'bin/busybox'));
  await chmod(join(dir, 'bin/busybox'), 0o755);
  const applets = execFileSync(BUSYBOX, ['--list'], { encoding: 'utf8' }).split('\n').filter((a) => a && a !== 'busybox');
  for (const a of applets) await symlink('busybox', join(dir, 'bin', a));
  for (const d of ['etc', 'tmp', 'root', 'home/app', 'var', 'usr/bin', 'sbin']) await mkdir(join(dir, d), { recursive: true });
  await chmod(join(dir, 'tmp'), 0o1777);
  await writeFile(join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
  await writeFile(join(dir, 'etc/group'), 'root:x:0:\nwheel:x:10:app\napp:x:1000:\nnogroup:x:65534:\n');
}

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

const script = fileURLToPath(new URL('../../../examples/busybox/make-rootfs.sh', import.meta.url));

/** Debian's busybox-static: a static binary that runs in an empty rootfs. */
export const BUSYBOX = '/bin/busybox';

/**
 * Writes a minimal Linux rootfs into `dir` (examples/busybox/make-rootfs.sh): busybox with a
 * symlink per applet in /bin, /etc/passwd and /etc/group with root, daemon (1), nobody and `app`
 * (uid 1000); root and app are also in group wheel=10, as in the official busybox image the
 * BuildKit conformance cases assume; /tmp (1777). Used to make base images inside tests without a registry.
 */
export async function makeBusyboxRootfs(dir: string): Promise<void> {
  await promisify(execFile)('sh', [script, dir]);
}

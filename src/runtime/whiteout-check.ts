import { constants, rmSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { BuildError } from '../errors.js';
import { mknod } from '../oci/native-fs.js';

const OVERLAYFS_MAGIC = 0x794c7630;

/**
 * Layer dirs and uppers keep a deletion as overlayfs does, a 0:0 character device. Where the
 * store's filesystem refuses one (overlayfs itself: a container's own root filesystem), or the
 * process lacks CAP_MKNOD, the first deleted file of a build would fail with a bare EPERM; this
 * says so before anything runs. One mknod and unlink in `tmp` (a directory of the store).
 */
export async function assertWhiteoutsPossible(tmp: string, root: string): Promise<void> {
  const probe = join(tmp, `.whiteout-check-${randomBytes(6).toString('hex')}`);
  try {
    mknod(probe, constants.S_IFCHR | 0o600, 0, 0);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? String(e);
    const onOverlay = (await statfs(root).catch(() => undefined))?.type === OVERLAYFS_MAGIC;
    throw new BuildError('USAGE', `the store at ${root} cannot hold deletions: making a whiteout (a 0:0 character device) there fails with ${code}`, {
      cause: e,
      hint: onOverlay
        ? "the store is on overlayfs (a container's own root filesystem): put it on a volume (docker run -v tsbuild:/var/lib/tsbuild, a Kubernetes emptyDir) or pass --root on one"
        : 'tsbuild needs CAP_MKNOD and a filesystem that allows device nodes (not mounted nodev)',
    });
  } finally {
    // On this thread: rm's lstat and unlink were two thread-pool round trips of every build's start.
    rmSync(probe, { force: true });
  }
}

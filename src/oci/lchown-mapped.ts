import { lchown } from 'node:fs/promises';
import { BuildError } from '../errors.js';
import { enteredUserNamespace } from '../runtime/userns-reexec.js';

/**
 * lchown for files of images and layers. In tsbuild's own user namespace an owner outside the
 * mapped ids fails with EINVAL: with only the caller's id mapped (no subordinate ids, see
 * userns-reexec.ts, whose warning said so) the file becomes root's, as rootless podman's
 * ignore_chown_errors; with a subordinate range too small for the image it is an error.
 * `path` must already be resolved inside its root (in-root.ts): this never follows a link.
 */
export async function lchownMapped(path: string, uid: number, gid: number): Promise<void> {
  try {
    await lchown(path, uid, gid);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EINVAL') throw e;
    const ns = enteredUserNamespace(process.env);
    if (ns?.mapping === 'single') return lchown(path, 0, 0);
    if (!ns) throw e;
    throw new BuildError('RUNTIME', `cannot make ${uid}:${gid} the owner of a file: that id is not mapped in tsbuild's user namespace (rootless mode)`, {
      hint: 'give your user a larger range of subordinate ids in /etc/subuid and /etc/subgid (65536 covers the usual images)',
      cause: e,
    });
  }
}

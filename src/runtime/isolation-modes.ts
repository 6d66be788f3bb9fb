/**
 * How RUN steps are isolated and snapshots made:
 * - `overlay`: real root with CAP_SYS_ADMIN: overlayfs mounts, runc with every namespace;
 * - `rootless`: root of a user namespace tsbuild entered itself (a normal user with subordinate
 *   ids, or root without CAP_SYS_ADMIN): overlayfs with `userxattr`, runc inside that namespace;
 * - `chroot`: neither mounts nor user namespaces (a default Docker or Kubernetes container):
 *   working directories diffed by a stat manifest, the command chrooted.
 */
export type Isolation = 'overlay' | 'rootless' | 'chroot';
// Its own module so the CLI checks flags and tsbuild.toml without loading the runtimes.
export const ISOLATIONS: readonly (Isolation | 'auto')[] = ['auto', 'overlay', 'rootless', 'chroot'];

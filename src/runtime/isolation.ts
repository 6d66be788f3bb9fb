import { BuildError } from '../errors.js';
import type { RootDirs } from '../root-dirs.js';
import { ChrootRunner } from './chroot-runner.js';
import type { CommandRunner } from './command-runner.js';
import { CopySnapshotter } from './copy-snapshotter.js';
import type { IsolationProbe } from './isolation-probe.js';
import type { LayerStore } from './layer-store.js';
import { OverlaySnapshotter } from './overlay.js';
import { RuncSandbox } from './runc.js';
import type { Snapshotter } from './snapshotter.js';

export { ISOLATIONS, type Isolation } from './isolation-modes.js';
import type { Isolation } from './isolation-modes.js';

export interface IsolationChoice {
  readonly mode: Isolation;
  /** Why, in a few words for the first progress line and `tsbuild info`. */
  readonly reason: string;
  /** The process must first enter a user namespace of its own (see userns-reexec.ts). */
  readonly needsUserNamespace: boolean;
}

/**
 * The mode for `requested` in the probed environment; a mode the environment can't give is a
 * usage error that says why and what would work. Pure, so every environment is unit-tested.
 */
export function chooseIsolation(p: IsolationProbe, requested: Isolation | 'auto'): IsolationChoice {
  const rootWithAdmin = p.euid === 0 && p.capSysAdmin;
  const overlay = rootWithAdmin && !p.inUserNamespace;
  const insideOurs = p.inUserNamespace && rootWithAdmin && p.overlayInUserNamespace === true;
  const canEnter = !p.inUserNamespace && p.userNamespaces === true && p.overlayInUserNamespace === true;
  const chroot = p.euid === 0 && p.capSysChroot;
  const who = p.euid === 0 ? (p.capSysAdmin ? 'root' : 'root without CAP_SYS_ADMIN') : `uid ${p.euid}`;
  const noUserns = p.userNamespaces === true ? `overlay in a user namespace is refused (${String(p.overlayInUserNamespace)})` : `user namespaces are refused (${p.userNamespaces})`;

  const pick = (mode: Isolation, reason: string, needsUserNamespace = false): IsolationChoice => ({ mode, reason, needsUserNamespace });
  const refuse = (mode: Isolation, why: string, instead: string): never => {
    throw new BuildError('USAGE', `--isolation ${mode} is not possible here: ${why}`, { hint: instead });
  };

  switch (requested) {
    case 'overlay':
      if (overlay) return pick('overlay', `${who}: overlayfs and runc`);
      return refuse('overlay', `it needs real root with CAP_SYS_ADMIN, and this is ${who}${p.inUserNamespace ? ' in a user namespace' : ''}`, 'use --isolation auto');
    case 'rootless':
      if (insideOurs) return pick('rootless', 'in a user namespace: overlayfs with userxattr, runc');
      if (canEnter) return pick('rootless', `${who}: a user namespace of its own, overlayfs with userxattr, runc`, true);
      return refuse('rootless', noUserns, chroot ? 'use --isolation chroot' : 'allow user namespaces (kernel.unprivileged_userns_clone=1, a seccomp profile that permits unshare)');
    case 'chroot':
      if (chroot) return pick('chroot', `${who}: no mounts; working directories and chroot`);
      return refuse('chroot', `it needs root with CAP_SYS_CHROOT, and this is ${who}`, 'use --isolation auto');
    case 'auto':
      if (overlay) return pick('overlay', `${who} with CAP_SYS_ADMIN: overlayfs and runc`);
      if (insideOurs) return pick('rootless', 'in a user namespace: overlayfs with userxattr, runc');
      if (canEnter) return pick('rootless', `${who}: a user namespace of its own, overlayfs with userxattr, runc`, true);
      if (chroot) return pick('chroot', `${who} and ${noUserns}: no mounts; working directories and chroot`);
      throw new BuildError('USAGE', `no isolation mode works here: this is ${who}, and ${noUserns}`, {
        hint: 'run tsbuild as root, or allow user namespaces (give the user ranges in /etc/subuid and /etc/subgid)',
      });
  }
}

/** The two halves of a mode; the solver sees them only as Worker.mount and Worker.sandbox. */
export interface Runtime {
  readonly snapshotter: Snapshotter;
  readonly runner: CommandRunner;
}

/**
 * Wires the implementations of `mode`. A store whose layers keep overlay markers in
 * `trusted.overlay.*` (made by an older tsbuild) is usable only where those xattrs are: as real root.
 */
export function createRuntime(mode: Isolation, dirs: RootDirs, layers: LayerStore): Runtime {
  if (mode !== 'overlay' && layers.overlayXattrPrefix === 'trusted.overlay.') {
    throw new BuildError('USAGE', `the store at ${dirs.root} keeps overlay markers in trusted.* xattrs (an older tsbuild made it as root); isolation ${mode} cannot read them`, {
      hint: 'use another --root for this mode, or build as root with CAP_SYS_ADMIN',
    });
  }
  switch (mode) {
    case 'overlay':
    case 'rootless':
      return { snapshotter: new OverlaySnapshotter(layers, dirs), runner: new RuncSandbox({ stateRoot: dirs.runc, bundleRoot: dirs.tmp, inUserNamespace: mode === 'rootless' }) };
    case 'chroot': {
      const snapshotter = new CopySnapshotter(layers, dirs, { opaqueXattrPrefix: layers.overlayXattrPrefix });
      return { snapshotter, runner: new ChrootRunner({ dirs, snapshots: snapshotter }) };
    }
  }
}

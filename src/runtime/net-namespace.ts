import { closeSync, fstatSync } from 'node:fs';
import { readlink } from 'node:fs/promises';
import { newNetNamespace } from '../oci/native-fs.js';

/** A new network namespace (a down `lo`, and the tap asked for), kept alive by a file descriptor of this process. */
export interface NetNamespace {
  /** `/proc/<our pid>/fd/<fd>`: a path runc (`namespaces[].path`) and slirp4netns can open to join it. */
  readonly path: string;
  /**
   * Throws unless `path` still leads to this namespace and it is not ours: checked right before
   * a container joins it, so a mixup (a reused descriptor, another /proc) fails closed instead of
   * putting a RUN on the host's network.
   */
  verify(): Promise<void>;
  /** Closes the descriptor; the namespace goes away once no process is left in it. */
  close(): Promise<void>;
}

/** No namespace could be made here: the kernel refused (no CAP_SYS_ADMIN over our user namespace, seccomp). */
export class NetNamespaceError extends Error {}

/**
 * Creates a network namespace owned by the user namespace we run in, so this works as real root
 * and as root of a user namespace tsbuild entered itself (no init-userns privilege assumed).
 *
 * The addon unshares it in a thread of its own (newNetNamespace); we hold it by that descriptor
 * (not by a holder process's pid, which can be reused, nor by a bind mount, which needs mount
 * rights and outlives a crash), so nothing is left behind when this process dies, however it dies.
 *
 * `tap`: the name of a persistent tap device to make in it, for slirp4netns to attach to (see
 * startSlirp). It is removed with the namespace.
 */
export async function createNetNamespace(signal: AbortSignal, opts: { tap?: string } = {}): Promise<NetNamespace> {
  signal.throwIfAborted();
  let fd: number;
  try {
    fd = newNetNamespace(opts.tap);
  } catch (e) {
    // The addon's message is "EPERM: Operation not permitted, unshare(CLONE_NEWNET) '…'".
    const err = e as NodeJS.ErrnoException;
    const reason = /^[A-Z0-9]+: ([^,]+)/.exec(err.message)?.[1] ?? err.message;
    const call = err.syscall ?? 'unshare';
    const what = call.startsWith('unshare') || !opts.tap ? call : `tap device ${opts.tap}: ${call} /dev/net/tun`;
    throw new NetNamespaceError(`${what} failed: ${reason}`);
  }
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    closeSync(fd);
  };
  try {
    // Our pid as the mounted /proc numbers it (inside a pid namespace process.pid may differ).
    const self = await readlink('/proc/self');
    const path = `/proc/${self}/fd/${fd}`;
    // An nsfs inode number is the namespace's id, as readlink shows it: net:[4026532174].
    const id = `net:[${fstatSync(fd).ino}]`;
    const verify = async () => {
      const [at, own] = await Promise.all([readlink(path).catch(() => 'gone'), readlink('/proc/self/ns/net')]);
      if (closed || at !== id || id === own) throw new NetNamespaceError(`the RUN's network namespace is not the one made for it (${path} is ${at}, expected ${id}; ours is ${own})`);
    };
    await verify();
    return { path, verify, close };
  } catch (e) {
    await close();
    throw e;
  }
}

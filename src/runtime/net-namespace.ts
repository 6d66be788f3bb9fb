import { spawn } from 'node:child_process';
import { open, readlink } from 'node:fs/promises';

/** An empty network namespace (only a down `lo`), kept alive by a file descriptor of this process. */
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

/** No namespace could be made here: unshare is missing, or the kernel refused (no CAP_SYS_ADMIN over our user namespace, seccomp). */
export class NetNamespaceError extends Error {}

/**
 * Creates a network namespace owned by the user namespace we run in, so this works as real root
 * and as root of a user namespace tsbuild entered itself (no init-userns privilege assumed).
 *
 * Node cannot unshare one thread, so util-linux `unshare --net` runs `cat` in the new namespace:
 * cat echoing our byte proves it runs there; we open its /proc/<pid>/ns/net and close its stdin,
 * so it exits at once. Holding the namespace by our own descriptor (not by the holder's pid,
 * which can be reused, nor by a bind mount, which needs mount rights and outlives a crash)
 * means nothing is left behind when this process dies, however it dies.
 */
export async function createNetNamespace(signal: AbortSignal): Promise<NetNamespace> {
  signal.throwIfAborted();
  const child = spawn('unshare', ['--net', '--', 'cat'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  child.stdin.on('error', () => undefined);
  try {
    const echoed = await new Promise<boolean>((resolve, reject) => {
      child.once('error', reject);
      child.stdout.once('data', () => resolve(true));
      child.once('close', () => resolve(false));
      child.stdin.write('x');
    }).catch((e: NodeJS.ErrnoException) => {
      throw new NetNamespaceError(e.code === 'ENOENT' ? 'unshare (util-linux) not found' : `cannot run unshare: ${e.message}`);
    });
    if (!echoed) {
      const msg = stderr.trim().split('\n').pop() || `unshare exited with ${child.exitCode}`;
      throw new NetNamespaceError(msg);
    }
    // Our pid as the mounted /proc numbers it (inside a pid namespace process.pid may differ).
    const self = await readlink('/proc/self');
    const ns = await open(`/proc/${child.pid}/ns/net`, 'r');
    try {
      const path = `/proc/${self}/fd/${ns.fd}`;
      // An nsfs inode number is the namespace's id, as readlink shows it: net:[4026532174].
      const id = `net:[${(await ns.stat()).ino}]`;
      const verify = async () => {
        const [at, own] = await Promise.all([readlink(path).catch(() => 'gone'), readlink('/proc/self/ns/net')]);
        if (at !== id || id === own) throw new NetNamespaceError(`the RUN's network namespace is not the one made for it (${path} is ${at}, expected ${id}; ours is ${own})`);
      };
      await verify();
      return { path, verify, close: () => ns.close() };
    } catch (e) {
      await ns.close();
      throw e;
    }
  } finally {
    child.stdin.end();
    // The holder has no work left; if it is still there after its stdin closed, it is killed by pid.
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('close', r));
      const timer = setTimeout(() => child.kill('SIGKILL'), 1000);
      await exited;
      clearTimeout(timer);
    }
  }
}

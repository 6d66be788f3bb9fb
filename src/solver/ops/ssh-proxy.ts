import { chmod } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import { BuildError } from '../../errors.js';
import { lchownMapped } from '../../oci/lchown-mapped.js';

/** A socket that forwards every connection to an ssh agent, until closed. */
export interface SshProxy {
  close(): Promise<void>;
}

/**
 * Listens on `path` (a new socket in a directory tsbuild made) and forwards each connection to
 * the agent at `agent`. As BuildKit's ssh forwarding, the RUN sees a socket of its own whose owner
 * and mode are the mount's (uid/gid/mode, 0600 root by default), never the user's agent socket,
 * whose owner and mode must not change.
 */
export async function openSshProxy(agent: string, path: string, owner: { uid: number; gid: number; mode: number }, signal: AbortSignal): Promise<SshProxy> {
  signal.throwIfAborted();
  // sun_path holds 108 bytes with its terminating NUL.
  if (Buffer.byteLength(path) > 107) {
    throw new BuildError('RUNTIME', `the ssh socket path ${path} is longer than a unix socket allows`, { hint: 'use a shorter --root (its tmp directory holds the socket the RUN sees)' });
  }
  const open = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(agent);
    open.add(client).add(upstream);
    const drop = (s: Socket) => () => {
      open.delete(s);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop(client)).on('close', drop(client));
    upstream.on('error', drop(upstream)).on('close', drop(upstream));
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const close = (): Promise<void> =>
    new Promise((resolve) => {
      for (const s of open) s.destroy();
      server.close(() => resolve());
    });
  try {
    await lchownMapped(path, owner.uid, owner.gid);
    await chmod(path, owner.mode);
  } catch (e) {
    await close();
    throw e;
  }
  return { close };
}

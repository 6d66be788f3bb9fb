import { spawn } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';

/** A running slirp4netns serving one network namespace. */
export interface Slirp {
  readonly pid: number;
  /** False once it has exited (crashed, or stopped). */
  alive(): boolean;
  /** Kills it and waits until it is gone. */
  stop(): Promise<void>;
}

/** slirp4netns could not start: not installed, or it failed to set up the namespace. */
export class SlirpError extends Error {}

/**
 * The RUN's interface, which slirp4netns serves: BuildKit's default network gives RUN an eth0
 * (testRunDefaultNetwork: `ip link show eth0`). Made beforehand by createNetNamespace, persistent,
 * so that slirp4netns's exit does not wait for the kernel to remove it.
 */
export const SLIRP_INTERFACE = 'eth0';

/** How long slirp4netns may take to configure the namespace (it takes ~3 ms here). */
const READY_TIMEOUT_MS = 10_000;

/**
 * Starts slirp4netns (user-mode networking) on the namespace at `nsPath`: eth0 10.0.2.100/24,
 * gateway 10.0.2.2, DNS forwarder 10.0.2.3 (to the host's first nameserver, port 53 only), `lo` up. The namespace
 * reaches the outside through ordinary sockets of this process's network namespace, as an
 * unprivileged program would; `--disable-host-loopback` refuses connections to the host's
 * 127.0.0.1 through the gateway. `--enable-sandbox --enable-seccomp` confine slirp4netns itself
 * (it parses every packet a RUN sends), as rootless podman runs it.
 *
 * Its --ready-fd and --exit-fd are socket pairs with this process: startup is awaited, and when
 * we close our end (or die, however) slirp4netns sees the event and exits, so no process outlives
 * the build.
 */
export async function startSlirp(nsPath: string, opts: { signal: AbortSignal }): Promise<Slirp> {
  opts.signal.throwIfAborted();
  const args = [
    '--configure',
    '--mtu=65520',
    '--disable-host-loopback',
    '--enable-sandbox',
    '--enable-seccomp',
    '--ready-fd=3',
    '--exit-fd=4',
    '--netns-type=path',
    nsPath,
    SLIRP_INTERFACE,
  ];
  const child = spawn('slirp4netns', args, { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
  const ready = child.stdio[3] as Readable;
  const exitFd = child.stdio[4] as Writable;
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4096)));
  const closed = new Promise<void>((r) => child.once('close', () => r()));
  // Killed rather than asked to exit by closing its exit fd: it keeps no state outside its process
  // (the tap device lives in the namespace), so there is nothing to wind down. The exit fd stays
  // the guard against tsbuild itself dying.
  const stop = async () => {
    exitFd.destroy();
    ready.destroy();
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGKILL');
    await closed;
  };
  try {
    await new Promise<void>((resolve, reject) => {
      // Whichever comes first settles; the others then find nothing to do.
      const settle = (outcome: () => void) => () => {
        clearTimeout(timer);
        opts.signal.removeEventListener('abort', onAbort);
        outcome();
      };
      const timer = setTimeout(settle(() => reject(new SlirpError(`slirp4netns not ready after ${READY_TIMEOUT_MS / 1000}s`))), READY_TIMEOUT_MS);
      const onAbort = settle(() => reject(opts.signal.reason));
      opts.signal.addEventListener('abort', onAbort, { once: true });
      ready.once('data', settle(resolve));
      child.once('error', (e: NodeJS.ErrnoException) =>
        settle(() => reject(new SlirpError(e.code === 'ENOENT' ? 'slirp4netns not found' : `cannot run slirp4netns: ${e.message}`)))(),
      );
      child.once('close', (code, signal) =>
        settle(() => reject(new SlirpError(`slirp4netns failed (${signal ?? `exit code ${code}`}): ${lastLine(stderr)}`)))(),
      );
    });
  } catch (e) {
    await stop();
    throw e;
  }
  return { pid: child.pid!, alive: () => child.exitCode === null && child.signalCode === null, stop };
}

/** The line of its stderr that says what went wrong, not its progress and warning chatter. */
function lastLine(text: string): string {
  const lines = text.trim().split('\n');
  return lines.filter((l) => !/^(sent|received) tapfd|^starting slirp|^WARNING: |^child failed/.test(l)).pop() ?? lines.pop() ?? '';
}

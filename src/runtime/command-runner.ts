import type { Readable } from 'node:stream';
import type { Ctx } from '../ctx.js';
import type { ExecRequest } from './spec.js';

/** Where a sandboxed process's output goes. Chunks are raw bytes, not split into lines. */
export interface ExecIO {
  /** Not called when the request has a terminal: the runtime then writes to the caller's terminal itself. */
  onOutput(stream: 1 | 2, chunk: Buffer): void;
  /** Fed to the process's stdin (`tsbuild run -i`); without it the process reads /dev/null, as every RUN does. */
  stdin?: Readable;
}

/** How the process ended. A non-zero exit code is a result, not an error. */
export interface ExecResult {
  /** The process's exit code; 128+n when it was killed by signal n (as runc reports it). */
  readonly exitCode: number;
  /** Set only if the runtime itself was killed by a signal. */
  readonly signal?: string;
  /** The kernel killed a process of the container for going over its memory limit (checked only with one). */
  readonly oomKilled?: boolean;
}

/**
 * How a RUN's process is started in a prepared root filesystem: runc (as real root, or inside
 * tsbuild's own user namespace), or chroot where no namespace can be made. A request the
 * runner can't honour in this environment is a BuildError naming the isolation mode.
 */
export interface CommandRunner {
  readonly kind: 'runc' | 'chroot';
  /**
   * Where a RUN's cgroup limits can go: `host`, the host's cgroups (real root); `user-namespace`,
   * only a subtree delegated to the caller (tsbuild's own user namespace); `none`, nowhere
   * (chroot: the process gets no cgroup of its own, so no default limit is added either).
   */
  readonly cgroups: 'host' | 'user-namespace' | 'none';
  run(req: ExecRequest, io: ExecIO, ctx: Ctx): Promise<ExecResult>;
  /**
   * Starts, in the background, what a run on `network` will need (runc: its private network),
   * so that the run() the caller makes next, once its mounts are ready, need not wait for it.
   */
  prepare?(network: ExecRequest['network'], ctx: Ctx): void;
  /**
   * At most `n` more runs can come that need what prepare() makes: what it keeps beyond that
   * (runc: idle RUN networks) is torn down now, in the background; with 0, all of it (close()
   * waits for it).
   */
  keepFor?(n: number): void;
  /** Kills and removes what crashed tsbuild processes left (never a live process's); returns what went. */
  cleanupStale(): Promise<string[]>;
  /**
   * Tears down what it keeps between runs (runc: pooled RUN networks) and waits until it is gone;
   * called when no run is expected. A later run makes anew what it needs. Callable more than once.
   */
  close?(): Promise<void>;
}

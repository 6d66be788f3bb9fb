import { mkdtemp, rm } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { join } from 'node:path';
import type { Ctx } from '../ctx.js';
import { BuildError } from '../errors.js';
import type { Descriptor } from '../oci/image.js';
import { readImage } from '../oci/image-reader.js';
import { mkdirInRoot } from '../oci/in-root.js';
import { writeEtcFiles } from '../runtime/etc-files.js';
import type { ExecIO } from '../runtime/runc.js';
import { resolveUser } from '../runtime/user.js';
import { DEFAULT_PATH } from '../solver/ops/exec.js';
import { ensureUnpacked } from '../solver/ops/image.js';
import type { Worker } from '../solver/worker.js';

/** What `tsbuild run` starts: the command (default: the image's entrypoint + cmd) and its network. */
export interface RunOptions {
  /** Replaces the image's Cmd (after its Entrypoint, as `docker run IMAGE CMD…`). */
  readonly command?: readonly string[];
  readonly network: 'host' | 'none';
  /** `-t`: a pseudo-terminal on the caller's terminal (which must be one); TERM=xterm unless the image sets TERM. */
  readonly tty?: boolean;
  /** With `tty`: the caller's terminal size, which the pty starts with. */
  readonly ttySize?: { readonly height: number; readonly width: number };
  /**
   * `--tmpfs PATH`: an empty tmpfs at each absolute container path, as docker run --tmpfs, but
   * with exec, suid and devices allowed: what runs there may be a tsbuild store, whose RUN steps
   * execute programs from it and need its device nodes (a volume in docker and Kubernetes).
   */
  readonly tmpfs?: readonly string[];
}

/**
 * Starts a throwaway container from a stored image in the build sandbox (overlay on the image's
 * layers, runc, the same namespaces and capabilities as RUN). Env, working directory and user
 * come from the image config. Whatever the process writes lands in an upperdir that is
 * discarded: the image and the layer store are unchanged. Returns the exit code (128+n for a
 * signal). Output goes to `io` (stdin too with `io.stdin`), or with `tty` to the caller's terminal.
 */
export async function runImage(worker: Worker, manifest: Descriptor, opts: RunOptions, io: ExecIO, ctx: Ctx): Promise<number> {
  const img = await readImage(worker.blobs, manifest);
  const diffIds = img.config.rootfs.diff_ids;
  for (let i = 0; i < img.layers.length; i++) await ensureUnpacked(worker, img.layers[i]!, diffIds[i]!, ctx);
  const cfg = img.config.config ?? {};
  const args = [...(cfg.Entrypoint ?? []), ...(opts.command ?? cfg.Cmd ?? [])];
  if (args.length === 0) throw new BuildError('USAGE', 'the image has no Entrypoint or Cmd; give a command: tsbuild run IMAGE -- CMD…');
  const env = cfg.Env ?? [];
  const mounted = await worker.mount(diffIds, {}, ctx);
  const etcDir = await mkdtemp(join(worker.dirs.tmp, 'etc-'));
  try {
    const cwd = cfg.WorkingDir || '/';
    await mkdirInRoot(mounted.merged, cwd, 0o755);
    const user = await resolveUser(mounted.merged, cfg.User ?? '');
    const mounts = [
      ...(await writeEtcFiles(etcDir, { hostname: 'tsbuild-run', network: opts.network })),
      ...(opts.tmpfs ?? []).map((destination) => ({ destination, source: 'tmpfs', type: 'tmpfs' as const, options: ['mode=755'] })),
    ];
    const status = await worker.sandbox.run(
      {
        rootfs: mounted.merged,
        args,
        env: withTerm(env.some((e) => e.startsWith('PATH=')) ? env : [DEFAULT_PATH, ...env], opts.tty ?? false),
        ...(opts.tty ? { terminal: true, ...(opts.ttySize ? { consoleSize: opts.ttySize } : {}) } : {}),
        cwd,
        uid: user.uid,
        gid: user.gid,
        additionalGids: user.additionalGids,
        hostname: 'tsbuild-run',
        network: opts.network,
        mounts,
      },
      io,
      ctx,
    );
    return status.signal ? 128 + signalNumber(status.signal) : status.exitCode;
  } finally {
    await rm(etcDir, { recursive: true, force: true });
    // release() without keepUpper(): the container's writes go with the mount.
    await mounted.release();
  }
}

/** As docker run -t: a terminal's programs want TERM, and the image's own value wins. */
function withTerm(env: readonly string[], tty: boolean): readonly string[] {
  return tty && !env.some((e) => e.startsWith('TERM=')) ? [...env, 'TERM=xterm'] : env;
}

function signalNumber(name: string): number {
  return (osConstants.signals as Readonly<Record<string, number>>)[name] ?? 0;
}

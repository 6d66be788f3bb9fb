import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { constants } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BuildError } from '../errors.js';
import type { Ctx } from '../ctx.js';
import { currentOwner, isOwnerAlive } from './owner.js';
import type { RuntimeConfig } from '../../schemas/types/runtime-config.js';
import { toRuntimeSpec, type ExecRequest } from './spec.js';
import { withHostResolvConf } from './etc-files.js';
import { SlirpNetworkProvider, type NetworkProvider, type SandboxNetwork } from './sandbox-network.js';
import { enteredUserNamespace } from './userns-reexec.js';
import type { CommandRunner, ExecIO, ExecResult } from './command-runner.js';

export type { ExecIO, ExecResult } from './command-runner.js';

/** Every container we create has this id prefix, so cleanup never touches anyone else's. */
export const CONTAINER_PREFIX = 'tsbuild-';
/** Annotation recording the creating process (see owner.ts), so cleanup spares live builds. */
const OWNER_ANNOTATION = 'dev.tsbuild.owner';


/**
 * Runs processes with runc (`runc run`; output piped, or with a terminal the caller's tty). One bundle dir per run
 * under `bundleRoot`, removed afterwards; container state under `stateRoot` (runc's --root).
 */
export class RuncSandbox implements CommandRunner {
  readonly kind = 'runc';
  readonly cgroups: 'host' | 'user-namespace';
  readonly #stateRoot: string;
  readonly #bundleRoot: string;
  readonly #runc: string;
  readonly #inUserNamespace: boolean;
  readonly #network: NetworkProvider;
  #nofileCeiling: Promise<number | undefined> | undefined;

  /**
   * `inUserNamespace`: tsbuild runs as uid 0 of a user namespace of its own (userns-reexec.ts;
   * by default: when it re-executed itself into one), so runc runs there too: rootless, with a
   * spec adapted to it (spec.ts) and limits only where cgroups were delegated (run-cgroups.ts).
   * `network` makes the private network of `sandbox` requests; default: slirp4netns, pooled until close().
   */
  constructor(opts: { stateRoot: string; bundleRoot: string; runcPath?: string; inUserNamespace?: boolean; network?: NetworkProvider }) {
    this.#stateRoot = opts.stateRoot;
    this.#bundleRoot = opts.bundleRoot;
    this.#runc = opts.runcPath ?? 'runc';
    this.#inUserNamespace = opts.inUserNamespace ?? enteredUserNamespace(process.env) !== undefined;
    this.cgroups = this.#inUserNamespace ? 'user-namespace' : 'host';
    this.#network = opts.network ?? new SlirpNetworkProvider();
  }

  /**
   * Runs `req` to completion and returns its exit status. On `ctx.signal` abort the container
   * is killed (SIGKILL to its pid namespace), deleted, and the promise rejects with the abort
   * reason. The container and bundle are always deleted before this settles; the rootfs is the
   * caller's (unmount it after).
   */
  async run(req: ExecRequest, io: ExecIO, ctx: Ctx): Promise<ExecResult> {
    ctx.signal.throwIfAborted();
    const id = CONTAINER_PREFIX + randomBytes(10).toString('hex');
    const bundle = join(this.#bundleRoot, id);
    await mkdir(bundle, { recursive: true });
    let net: SandboxNetwork | undefined;
    try {
      if (req.network === 'sandbox') {
        net = await this.#network.acquire(ctx);
        // No private network here (the provider warned): the host's, with the host's resolv.conf.
        if (!net) req = { ...req, network: 'host', mounts: await withHostResolvConf(req.mounts, bundle) };
      }
      const userns = this.#inUserNamespace;
      const spec = toRuntimeSpec(req, { inUserNamespace: userns, ...(net ? { netnsPath: net.path } : {}) });
      // Last check before runc opens the path: a RUN never lands on the host's network by mistake.
      await net?.verify().catch((e: Error) => Promise.reject(new BuildError('RUNTIME', e.message, { cause: e })));
      spec.annotations = { ...spec.annotations, [OWNER_ANNOTATION]: await currentOwner() };
      // Relative: runc nests the cgroup under its own (v1) or beside it (v2), never outside the
      // caller's. Named after the container, so `runc delete` removes it, as cleanup of a killed build does.
      // In a user namespace only with limits (a delegated subtree): runc ignores a cgroup it cannot
      // create only when no path was asked for.
      const limited = Object.keys(req.cgroupLimits ?? {}).length > 0;
      if (!userns || limited) spec.linux = { ...spec.linux, cgroupsPath: id };
      // Our capabilities and hard limit stay as they are: read once, not twice per RUN.
      this.#nofileCeiling ??= nofileCeiling(userns);
      clampRlimits(spec, await this.#nofileCeiling);
      await writeFile(join(bundle, 'config.json'), JSON.stringify(spec));
      ctx.signal.throwIfAborted();

      // With a terminal, runc run in the foreground allocates the pty, puts our terminal (its
      // inherited stdio) in raw mode, relays both ways and follows window size changes.
      // With a memory limit the stopped container is kept (until the delete below), so its cgroup
      // can still tell whether the OOM killer struck.
      const watchOom = req.cgroupLimits?.memory !== undefined;
      const child = spawn(this.#runc, [...this.#globalArgs(), 'run', ...(watchOom ? ['--keep'] : []), '--bundle', bundle, id], {
        stdio: req.terminal ? 'inherit' : ['pipe', 'pipe', 'pipe'],
      });
      if (child.stdin) {
        // A process that exits without reading all its input closes the pipe: not an error.
        child.stdin.on('error', () => undefined);
        // Without io.stdin the process sees an empty stdin at once, as from /dev/null.
        if (io.stdin) io.stdin.pipe(child.stdin);
        else child.stdin.end();
      }
      child.stdout?.on('data', (c: Buffer) => io.onOutput(1, c));
      child.stderr?.on('data', (c: Buffer) => io.onOutput(2, c));
      let exited = false;
      const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
        child.on('error', (e) => {
          exited = true;
          reject(new BuildError('RUNTIME', `cannot run ${this.#runc}: ${e.message}`, { cause: e }));
        });
        // 'close' (not 'exit') so all output has been delivered.
        child.on('close', (code, signal) => {
          exited = true;
          resolve({ code, signal });
        });
      });

      const onAbort = () => void this.#killUntilExited(id, child, () => exited);
      ctx.signal.addEventListener('abort', onAbort, { once: true });
      try {
        const { code, signal } = await done;
        ctx.signal.throwIfAborted();
        const oom = watchOom && (await oomKills(join(this.#stateRoot, id))) > 0 ? { oomKilled: true } : {};
        return signal ? { exitCode: 128 + signalNumber(signal), signal, ...oom } : { exitCode: code ?? 255, ...oom };
      } finally {
        ctx.signal.removeEventListener('abort', onAbort);
      }
    } finally {
      try {
        await this.#delete(id);
      } finally {
        // After the container is gone: nothing is left in the namespace.
        // Reused by a later RUN only if this one could not reconfigure it (no CAP_NET_ADMIN).
        await net?.release(!req.privileged);
        // config.json (and a resolv.conf at most): on this thread, not rm's walk of round trips.
        rmSync(bundle, { recursive: true, force: true });
      }
    }
  }

  prepare(network: ExecRequest['network'], ctx: Ctx): void {
    if (network === 'sandbox') this.#network.prepare?.(ctx);
  }

  keepFor(n: number): void {
    if (n > 0) this.#network.keepAtMost?.(n);
    else void this.#network.close().catch(() => undefined);
  }

  /** Tears down the private networks kept for reuse (see SlirpNetworkProvider); call when no run is expected. */
  async close(): Promise<void> {
    await this.#network.close();
  }

  /**
   * `runc kill` fails until runc has created the container, so retry until the `runc run`
   * child is gone; after 10 s of failures, kill runc itself as a last resort.
   */
  async #killUntilExited(id: string, child: { kill(sig: NodeJS.Signals): boolean }, exited: () => boolean): Promise<void> {
    const start = Date.now();
    while (!exited()) {
      await runcCmd(this.#runc, [...this.#globalArgs(), 'kill', id, 'KILL']).catch(() => undefined);
      await sleep(25);
      if (Date.now() - start > 10_000) child.kill('SIGKILL');
    }
  }

  cleanupStale(): Promise<string[]> {
    return cleanupStaleContainers(this.#stateRoot, this.#runc, { inUserNamespace: this.#inUserNamespace });
  }

  async #delete(id: string): Promise<void> {
    // `runc run` (without --keep) destroys its container as it exits, its state dir last: with
    // that dir gone there is nothing to delete, and `runc delete` (a process, ~5 ms of every RUN
    // step) is not asked. A runc killed before it got there leaves the dir, and is deleted.
    if (!existsSync(join(this.#stateRoot, id))) return;
    await deleteContainer(this.#runc, this.#globalArgs(), id);
  }

  /**
   * runc's global flags. In a user namespace `--rootless true`: runc's auto-detection picks the
   * rootless cgroup manager (which skips cgroups it may not create, and device rules) only for
   * a non-zero euid, and we are uid 0 in our namespace.
   */
  #globalArgs(): string[] {
    return ['--root', this.#stateRoot, ...(this.#inUserNamespace ? ['--rootless', 'true'] : [])];
  }
}

async function deleteContainer(runc: string, globalArgs: readonly string[], id: string): Promise<void> {
  try {
    await runcCmd(runc, [...globalArgs, 'delete', '--force', id]);
  } catch (e) {
    const msg = (e as { stderr?: string }).stderr ?? '';
    if (!/does not exist|not exist|no such/i.test(msg)) {
      throw new BuildError('RUNTIME', `runc delete ${id} failed: ${msg.trim() || String(e)}`, { cause: e });
    }
  }
}

/**
 * Kills and deletes containers under `stateRoot` that a crashed tsbuild left: ids with our
 * prefix whose owning process is gone. Containers of live tsbuild processes sharing the root
 * are left alone. Returns the ids removed.
 */
export async function cleanupStaleContainers(stateRoot: string, runcPath = 'runc', opts: { inUserNamespace?: boolean } = {}): Promise<string[]> {
  // runc keeps one directory per container, named by its id, in its root: with none of ours
  // there (every build after a clean one) nothing is stale, and `runc list` (a process, ~20 ms
  // of each no-op rebuild) is not asked.
  if (!(await readdir(stateRoot).catch(() => [] as string[])).some((n) => n.startsWith(CONTAINER_PREFIX))) return [];
  const globalArgs = ['--root', stateRoot, ...((opts.inUserNamespace ?? enteredUserNamespace(process.env) !== undefined) ? ['--rootless', 'true'] : [])];
  const out = await runcCmd(runcPath, ['--root', stateRoot, 'list', '--format', 'json']);
  const list = (JSON.parse(out || 'null') ?? []) as { id: string; annotations?: Record<string, string> }[];
  const removed: string[] = [];
  for (const c of list) {
    if (!c.id.startsWith(CONTAINER_PREFIX)) continue;
    const owner = c.annotations?.[OWNER_ANNOTATION];
    if (owner && (await isOwnerAlive(owner))) continue;
    await runcCmd(runcPath, ['--root', stateRoot, 'kill', c.id, 'KILL']).catch(() => undefined);
    await deleteContainer(runcPath, globalArgs, c.id);
    removed.push(c.id);
  }
  return removed;
}

/**
 * How many processes the OOM killer killed in a stopped, kept container: from its memory cgroup
 * (v1 memory.oom_control, v2 memory.events), found in runc's state. 0 when unknown.
 */
async function oomKills(containerState: string): Promise<number> {
  try {
    const state = JSON.parse(await readFile(join(containerState, 'state.json'), 'utf8')) as { cgroup_paths?: Record<string, string> };
    const paths = state.cgroup_paths ?? {};
    const memory = paths['memory'] ?? paths[''];
    if (!memory) return 0;
    const text = (await readFile(join(memory, 'memory.oom_control'), 'utf8').catch(() => undefined)) ?? (await readFile(join(memory, 'memory.events'), 'utf8'));
    return Number(/^oom_kill (\d+)/m.exec(text)?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/**
 * The open-files limit a RUN may not exceed: our own hard limit when we may not raise it (no
 * CAP_SYS_RESOURCE, e.g. root in a restricted VM or container; in a user namespace the
 * capability we hold there does not count), where runc would fail with EPERM; else undefined.
 */
async function nofileCeiling(inUserNamespace: boolean): Promise<number | undefined> {
  const status = await readFile('/proc/self/status', 'utf8');
  const capEff = BigInt('0x' + (/^CapEff:\s*([0-9a-f]+)/m.exec(status)?.[1] ?? '0'));
  if (!inUserNamespace && capEff & (1n << CAP_SYS_RESOURCE)) return undefined;
  const limits = await readFile('/proc/self/limits', 'utf8');
  const hard = /^Max open files\s+\S+\s+(\d+)/m.exec(limits)?.[1];
  return hard === undefined ? undefined : Number(hard);
}

/** Lowers the spec's open-files limit to `ceiling` (see nofileCeiling). */
function clampRlimits(spec: RuntimeConfig, ceiling: number | undefined): void {
  if (ceiling === undefined) return;
  for (const r of spec.process?.rlimits ?? []) {
    if (r.type === 'RLIMIT_NOFILE') {
      r.hard = Math.min(r.hard, ceiling);
      r.soft = Math.min(r.soft, r.hard);
    }
  }
}
const CAP_SYS_RESOURCE = 24n;

function runcCmd(runc: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(runc, args, (err, stdout, stderr) => {
      if (err) reject(Object.assign(err, { stderr: String(stderr) }));
      else resolve(String(stdout));
    });
  });
}

function signalNumber(sig: NodeJS.Signals): number {
  return constants.signals[sig] ?? 0;
}

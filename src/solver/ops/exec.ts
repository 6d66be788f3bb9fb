import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Ctx } from '../../ctx.js';
import { BuildError } from '../../errors.js';
import { resolveUser } from '../../runtime/user.js';
import type { ExecResult } from '../../runtime/command-runner.js';
import type { ExecRequest } from '../../runtime/spec.js';
import { mkdirInRoot } from '../../oci/in-root.js';
import { currentCapabilities } from '../../runtime/current-caps.js';
import { writeEtcFiles } from '../../runtime/etc-files.js';
import type { ExecOp, Result, RootfsResult, Vertex } from '../graph.js';
import type { OpHandler, StepControl } from '../scheduler.js';
import type { Worker } from '../worker.js';
import { commitUpperAsLayer } from './commit-layer.js';
import { runFailureShell, type OnRunError } from './failure-shell.js';
import { recordMountStubs, type MountStubs } from './mount-stubs.js';
import { OutputTail } from './output-tail.js';
import { reportOutOfMemory, RunCgroups } from './run-cgroups.js';
import { CacheMountLocks, prepareRunMounts, type PreparedMounts, type RunMountSources } from './run-mounts.js';

/** Build-wide settings of RUN steps that are not part of the graph. */
export interface ExecOptions extends RunMountSources {
  /** `--allow security.insecure` was given. */
  readonly allowInsecure: boolean;
  /** True when the step runs with the cache off (--no-cache, --no-cache-filter). */
  readonly ignoresCache?: (v: Vertex) => boolean;
  /** `--on-error=shell`: a failed RUN opens a shell in its state before the build fails. */
  readonly onError?: OnRunError;
  /**
   * Asked as the process of `v` has exited: how many other RUNs of the build can still need a
   * network. The runner's networks beyond that are torn down at once, while this step's layer
   * is committed (all of them after the last RUN), rather than once the build ends.
   */
  readonly networkUsesLeft?: (v: Vertex) => number;
}

const NO_OPTIONS: ExecOptions = { secrets: new Map(), ssh: new Map(), allowInsecure: false };

export const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const HOSTNAME = 'tsbuild';
/** Mount points runc creates when the image lacks them (see mount-stubs.ts). */
const RUNTIME_MOUNT_POINTS = ['/proc', '/dev', '/sys', '/etc/hosts', '/etc/resolv.conf'];

/** RUN: overlay-mount the input rootfs with a fresh upperdir, run the command with runc, keep the upperdir as the new layer. */
export function execHandler(worker: Worker, opts: ExecOptions = NO_OPTIONS): OpHandler<ExecOp> {
  const locks = new CacheMountLocks();
  const cgroups = new RunCgroups(undefined, { cgroups: worker.sandbox.cgroups });
  return {
    async run(op, inputs, vertex, ctx, step) {
      if (op.security === 'insecure' && !opts.allowInsecure) {
        throw new BuildError('RUN_FAILED', 'RUN --security=insecure: entitlement security.insecure is not allowed', { location: vertex.meta.location, hint: 'pass --allow security.insecure to permit it' });
      }
      const base = rootfsInput(inputs[0]);
      // The RUN's network is made while its rootfs is mounted.
      worker.sandbox.prepare?.(op.network, ctx);
      const mounted = await worker.mount(base.layers.map((l) => l.diffId), {}, ctx);
      let upper: string;
      let stubs: MountStubs;
      try {
        const runMounts = await prepareRunMounts(worker, op.mounts ?? [], inputs, opts, locks, vertex.meta.location, opts.ignoresCache?.(vertex) ?? false, ctx);
        try {
          stubs = await runIn(worker, mounted.merged, op, vertex, runMounts, cgroups, ctx, opts.onError && step ? { on: opts.onError, step } : undefined, opts.networkUsesLeft);
        } finally {
          await runMounts.release();
        }
        upper = mounted.keepUpper();
      } finally {
        await mounted.release();
      }
      await stubs.pruneCopyUps(upper, worker.layers.opaqueXattr);
      return commitUpperAsLayer(worker, upper, base, ctx, { keepEmpty: true });
    },
  };
}

async function runIn(
  worker: Worker,
  rootfs: string,
  op: ExecOp,
  vertex: Vertex,
  runMounts: PreparedMounts,
  cgroups: RunCgroups,
  ctx: Ctx,
  onError: { on: OnRunError; step: StepControl } | undefined,
  networkUsesLeft: ExecOptions['networkUsesLeft'],
): Promise<MountStubs> {
  const cgroupLimits = await cgroups.limitsFor(op.limits, vertex.meta.location, ctx);
  const user = await resolveUser(rootfs, op.user);
  // RUN --mount targets are mount points made for this RUN only: like runc's, they stay out of the layer.
  const stubs = await recordMountStubs(rootfs, [...RUNTIME_MOUNT_POINTS, ...runMounts.targets]);
  // The working directory is created when missing, as docker and BuildKit do; it belongs to the layer.
  await mkdirInRoot(rootfs, op.cwd, 0o755);
  const etcDir = mkdtempSync(join(worker.dirs.tmp, 'etc-'));
  const hostname = op.hostname ?? HOSTNAME;
  const etcMounts = await writeEtcFiles(etcDir, { hostname, network: op.network, ...(op.extraHosts ? { extraHosts: op.extraHosts } : {}) });
  const tail = new OutputTail(20);
  const request: ExecRequest = {
    rootfs,
    args: [...op.args],
    env: [...(op.env.some((e) => e.startsWith('PATH=')) ? op.env : [DEFAULT_PATH, ...op.env]), ...(vertex.meta.proxyEnv ?? []), ...runMounts.env],
    cwd: op.cwd,
    uid: user.uid,
    gid: user.gid,
    additionalGids: user.additionalGids,
    hostname,
    network: op.network,
    mounts: [...etcMounts, ...runMounts.mounts],
    ...(op.ulimits ? { rlimits: op.ulimits } : {}),
    ...(op.shmSize !== undefined ? { shmSize: op.shmSize } : {}),
    cgroupLimits,
    ...(op.security === 'insecure' ? { privileged: { capabilities: await currentCapabilities() } } : {}),
  };
  let failure: BuildError | undefined;
  try {
    const status = await worker.sandbox.run(
      request,
      {
        onOutput(stream, chunk) {
          tail.push(chunk);
          ctx.events.emit({ type: 'log', vertex: vertex.digest, stream, data: chunk.toString('utf8'), at: Date.now() });
        },
      },
      ctx,
    );
    failure = runFailure(status, op, vertex, tail, ctx);
    // Networks no later RUN can use are torn down while this one's layer is committed (a shell
    // opened below makes one anew).
    if (op.network === 'sandbox' && networkUsesLeft) worker.networksNeeded?.(networkUsesLeft(vertex));
    // The shell opens while everything the RUN had is still in place: rootfs (with its writes), mounts, /etc files.
    if (failure && onError) {
      const outer = onError.step.failFast(failure);
      if (outer && onError.on.claim()) {
        await runFailureShell(worker.sandbox, request, { mounts: runMounts.secretMounts, env: runMounts.env }, onError.on, vertex.meta.shell, failure, outer);
      }
    }
  } finally {
    // Two small files: on this thread, not rm's walk of round trips.
    rmSync(etcDir, { recursive: true, force: true });
    await stubs.removeCreated();
  }
  if (failure) throw failure;
  return stubs;
}

/** The error of a RUN that ended with `status` (undefined when it succeeded). */
function runFailure(status: ExecResult, op: ExecOp, vertex: Vertex, tail: OutputTail, ctx: Ctx): BuildError | undefined {
  try {
    if (status.oomKilled) reportOutOfMemory(status.exitCode, op.limits, { location: vertex.meta.location, outputTail: tail.lines() }, ctx);
  } catch (e) {
    return e as BuildError;
  }
  if (status.exitCode === 0) return undefined;
  const how = status.signal ? `signal: ${status.signal}` : `exit code: ${status.exitCode}`;
  return new BuildError('RUN_FAILED', `process ${JSON.stringify(op.args.join(' '))} did not complete successfully: ${how}`, {
    location: vertex.meta.location,
    outputTail: tail.lines(),
    exitCode: status.exitCode,
  });
}

/** The rootfs an exec or file op writes on; no input means scratch. */
export function rootfsInput(r: Result | undefined): RootfsResult {
  if (!r) return { kind: 'rootfs', layers: [] };
  if (r.kind !== 'rootfs') throw new BuildError('INTERNAL', 'expected a root filesystem as input');
  return r;
}

import type { Ctx } from '../../ctx.js';
import { formatByteSizeFlag } from '../../byte-size.js';
import { BuildError, type SourceLocation } from '../../errors.js';
import { countList, expandList, probeCgroupHost, type CgroupHost, type Controller } from '../../runtime/cgroup-host.js';
import type { CgroupLimits } from '../../runtime/spec.js';
import type { CommandRunner } from '../../runtime/command-runner.js';
import type { RunLimits } from '../graph.js';

/** podman's default: enough for any build, too few for a fork bomb to take the host down. */
export const DEFAULT_PIDS_LIMIT = 2048;
/** `--cpus` is a quota over docker's period of 100 ms. */
const CPUS_PERIOD = 100_000;

/**
 * The cgroup settings of a RUN: its `--memory`, `--cpus`, `--pids-limit`… checked against what
 * the host offers, plus the default process limit. Pure. A limit that was asked for and can't be
 * applied is an error naming its flag; the default limit is dropped with a warning instead.
 * `userNamespace`: tsbuild runs in a user namespace of its own (rootless), where only cgroups
 * delegated to the caller are writable: without one the default limit is dropped silently (the
 * normal case there, which the user can't change per build) and asked-for limits name the mode.
 */
export function cgroupLimitsFor(
  limits: RunLimits | undefined,
  host: CgroupHost,
  opts: { userNamespace?: boolean; defaultPidsLimit?: boolean } = {},
): { limits: CgroupLimits; warning?: string } {
  const l = limits ?? {};
  const need = (c: Controller, flag: string) => {
    if (!host.parents.has(c) && opts.userNamespace) {
      throw new BuildError('RUNTIME', `${flag} needs the ${c} cgroup controller, which tsbuild cannot use in rootless mode (in its own user namespace) unless a cgroup v2 subtree with ${c} is delegated to you (cgroup layout here: ${host.layout})`, {
        hint: `run the build in a delegated cgroup v2 subtree (e.g. systemd-run --user --scope -p Delegate=yes tsbuild …), build as root, or leave out ${flag}`,
      });
    }
    if (!host.parents.has(c)) {
      throw new BuildError('RUNTIME', `${flag} needs the ${c} cgroup controller, which is not available to tsbuild here (cgroup layout: ${host.layout})`, {
        hint: host.layout === 'v2' ? `enable it for the parent cgroup (cgroup.subtree_control) or leave out ${flag}` : `mount the ${c} cgroup hierarchy, or leave out ${flag}`,
      });
    }
  };
  const out: { memory?: CgroupLimits['memory']; cpu?: NonNullable<CgroupLimits['cpu']>; pids?: CgroupLimits['pids'] } = {};
  let warning: string | undefined;

  if (l.memory !== undefined) {
    need('memory', '--memory');
    let swap = l.memorySwap;
    if (swap !== undefined && swap !== -1 && !host.swapAccounting) {
      throw new BuildError('RUNTIME', '--memory-swap needs swap accounting in the memory cgroup, which this kernel does not offer', { hint: 'leave out --memory-swap' });
    }
    // As docker: swap defaults to as much as the memory limit (memory plus swap: twice it).
    if (swap === undefined && host.swapAccounting) swap = 2 * l.memory;
    // Without swap accounting only -1 (unlimited) gets here, which is then what the host does anyway.
    out.memory = { limit: l.memory, ...(swap !== undefined && host.swapAccounting ? { swap } : {}) };
  }

  const cpu: { -readonly [K in keyof NonNullable<CgroupLimits['cpu']>]: NonNullable<CgroupLimits['cpu']>[K] } = {};
  if (l.cpuShares !== undefined) {
    need('cpu', '--cpu-shares');
    cpu.shares = l.cpuShares;
  }
  if (l.cpus !== undefined) {
    need('cpu', '--cpus');
    const available = countList(host.cpus);
    if (l.cpus > available) throw new BuildError('RUNTIME', `--cpus ${l.cpus}: only ${available} CPU${available === 1 ? ' is' : 's are'} available here`);
    cpu.period = CPUS_PERIOD;
    cpu.quota = Math.round(l.cpus * CPUS_PERIOD);
  }
  if (l.cpuPeriod !== undefined) {
    need('cpu', '--cpu-period');
    cpu.period = l.cpuPeriod;
  }
  if (l.cpuQuota !== undefined) {
    need('cpu', '--cpu-quota');
    cpu.quota = l.cpuQuota;
  }
  if (l.cpusetCpus !== undefined) {
    need('cpuset', '--cpuset-cpus');
    cpu.cpus = subsetOf('--cpuset-cpus', l.cpusetCpus, host.cpus, 'CPUs');
  }
  if (l.cpusetMems !== undefined) {
    need('cpuset', '--cpuset-mems');
    cpu.mems = subsetOf('--cpuset-mems', l.cpusetMems, host.mems, 'memory nodes');
  }
  if (Object.keys(cpu).length > 0) out.cpu = cpu;

  if (l.pidsLimit === undefined) {
    if (opts.defaultPidsLimit === false) {
      // A runtime without cgroups: the limits asked for stay, for it to refuse by name.
    } else if (host.parents.has('pids')) out.pids = { limit: DEFAULT_PIDS_LIMIT };
    else if (!opts.userNamespace) warning = `no pids cgroup controller here: RUN steps run without the default limit of ${DEFAULT_PIDS_LIMIT} processes`;
  } else if (l.pidsLimit > 0) {
    need('pids', '--pids-limit');
    out.pids = { limit: l.pidsLimit };
  }
  return { limits: out, ...(warning ? { warning } : {}) };
}

function subsetOf(flag: string, list: string, allowed: string, what: string): string {
  const ok = expandList(allowed);
  const bad = [...expandList(list)].filter((n) => !ok.has(n));
  if (bad.length > 0) throw new BuildError('RUNTIME', `${flag} ${list}: ${what} ${bad.join(',')} not available here (available: ${allowed})`);
  return list;
}

/**
 * A RUN in which the OOM killer struck: when it failed, that is the reason to give (not "exit
 * code 137"); when it succeeded anyway (a child was killed and the command coped), a warning.
 */
export function reportOutOfMemory(exitCode: number, limits: RunLimits | undefined, where: { location?: SourceLocation; outputTail: readonly string[] }, ctx: Ctx): void {
  const why = `out of memory${limits?.memory !== undefined ? ` (--memory ${formatByteSizeFlag(limits.memory)})` : ''}`;
  if (exitCode === 0) {
    ctx.events.emit({ type: 'warning', message: `a process of this RUN was killed: ${why}`, ...(where.location ? { location: where.location } : {}), at: Date.now() });
    return;
  }
  throw new BuildError('RUN_FAILED', `RUN was killed: ${why}`, { ...where, exitCode, hint: 'raise --memory, or make the step use less memory' });
}

/**
 * One build's view of the host's cgroups: probed at the first RUN that executes, then reused;
 * the warning about a missing default limit is given once.
 */
export class RunCgroups {
  readonly #probe: () => Promise<CgroupHost>;
  readonly #cgroups: CommandRunner['cgroups'];
  #host?: Promise<CgroupHost>;
  #warned = false;

  /** `cgroups`: where the runner can put limits (CommandRunner.cgroups). */
  constructor(probe: () => Promise<CgroupHost> = probeCgroupHost, opts: { cgroups: CommandRunner['cgroups'] }) {
    this.#probe = probe;
    this.#cgroups = opts.cgroups;
  }

  async limitsFor(limits: RunLimits | undefined, location: SourceLocation | undefined, ctx: Ctx): Promise<CgroupLimits> {
    this.#host ??= this.#probe();
    let r;
    try {
      r = cgroupLimitsFor(limits, await this.#host, { userNamespace: this.#cgroups === 'user-namespace', defaultPidsLimit: this.#cgroups !== 'none' });
    } catch (e) {
      throw e instanceof BuildError ? e.withLocation(location) : e;
    }
    if (r.warning && !this.#warned) {
      this.#warned = true;
      ctx.events.emit({ type: 'warning', message: r.warning, at: Date.now() });
    }
    return r.limits;
  }
}

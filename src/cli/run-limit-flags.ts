import { parseByteSize } from '../byte-size.js';
import { BuildError } from '../errors.js';
import type { RunLimits } from '../solver/graph.js';

/** The cgroup-limit flags of `build`, as commander hands them over (strings, unparsed). */
export interface RunLimitFlags {
  memory?: string;
  memorySwap?: string;
  cpuShares?: string;
  cpus?: string;
  cpuPeriod?: string;
  cpuQuota?: string;
  cpusetCpus?: string;
  cpusetMems?: string;
  pidsLimit?: string;
}

/** Docker's floor: below this a RUN can't even start its shell reliably. */
const MIN_MEMORY = 6 << 20;
const CPU_LIST = /^\d+(-\d+)?(,\d+(-\d+)?)*$/;

/**
 * `--memory`, `--memory-swap`, `--cpu-shares`, `--cpus`, `--cpu-period`, `--cpu-quota`,
 * `--cpuset-cpus`, `--cpuset-mems`, `--pids-limit` → RunLimits, with docker's (and buildah's)
 * syntax and checks. Undefined when none was given, so RUN cache keys stay as without flags.
 * What depends on the host (CPU count, controllers) is checked when a RUN starts.
 */
export function parseRunLimits(flags: RunLimitFlags): RunLimits | undefined {
  const limits: { -readonly [K in keyof RunLimits]: RunLimits[K] } = {};
  // As docker, 0 means "not set" for every one but --pids-limit.
  const memory = unlessZero(flags.memory);
  const memorySwap = unlessZero(flags.memorySwap);
  const cpus = unlessZero(flags.cpus);
  const cpuShares = unlessZero(flags.cpuShares);
  const cpuPeriod = unlessZero(flags.cpuPeriod);
  const cpuQuota = unlessZero(flags.cpuQuota);
  if (memory !== undefined) {
    const n = parseByteSize(memory);
    if (n === undefined) throw usage('--memory', memory, 'expected a size such as 512m or 1g');
    if (n < MIN_MEMORY) throw usage('--memory', memory, 'the minimum is 6m');
    limits.memory = n;
  }
  if (memorySwap !== undefined) {
    const n = memorySwap.trim() === '-1' ? -1 : parseByteSize(memorySwap);
    if (n === undefined) throw usage('--memory-swap', memorySwap, 'expected a size such as 1g (memory plus swap), or -1 for unlimited swap');
    if (limits.memory === undefined) throw usage('--memory-swap', memorySwap, 'it limits memory plus swap, so it needs --memory too');
    if (n !== -1 && n < limits.memory) throw usage('--memory-swap', memorySwap, 'it is memory plus swap, so it can not be below --memory');
    limits.memorySwap = n;
  }
  if (cpuShares !== undefined) limits.cpuShares = integer('--cpu-shares', cpuShares, 2, 262144);
  if (cpus !== undefined) {
    const n = /^\d*\.?\d+$/.test(cpus.trim()) ? Number(cpus) : NaN;
    if (!(n >= 0.01)) throw usage('--cpus', cpus, 'expected a number of CPUs such as 0.5 or 2 (at least 0.01)');
    if (cpuPeriod !== undefined || cpuQuota !== undefined) {
      throw usage('--cpus', cpus, 'it sets the CPU quota and period itself, so it can not be combined with --cpu-period or --cpu-quota');
    }
    limits.cpus = n;
  }
  // The kernel's bounds: a period of 1 ms to 1 s, a quota of at least 1 ms.
  if (cpuPeriod !== undefined) limits.cpuPeriod = integer('--cpu-period', cpuPeriod, 1000, 1_000_000);
  if (cpuQuota !== undefined) limits.cpuQuota = integer('--cpu-quota', cpuQuota, 1000, Number.MAX_SAFE_INTEGER);
  if (flags.cpusetCpus !== undefined) limits.cpusetCpus = cpuList('--cpuset-cpus', flags.cpusetCpus);
  if (flags.cpusetMems !== undefined) limits.cpusetMems = cpuList('--cpuset-mems', flags.cpusetMems);
  if (flags.pidsLimit !== undefined) {
    // As podman: -1 or 0 lifts the default limit.
    limits.pidsLimit = Math.max(0, integer('--pids-limit', flags.pidsLimit, -1, Number.MAX_SAFE_INTEGER));
  }
  return Object.keys(limits).length > 0 ? limits : undefined;
}

function unlessZero(v: string | undefined): string | undefined {
  return v !== undefined && /^\s*0+(\.0*)?\s*[kmgtp]?i?b?\s*$/i.test(v) ? undefined : v;
}

function integer(flag: string, v: string, min: number, max: number): number {
  const n = /^-?\d+$/.test(v.trim()) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw usage(flag, v, `expected a whole number from ${min}${max === Number.MAX_SAFE_INTEGER ? ' up' : ` to ${max}`}`);
  }
  return n;
}

function cpuList(flag: string, v: string): string {
  const list = v.replace(/\s+/g, '');
  if (!CPU_LIST.test(list)) throw usage(flag, v, 'expected a list such as 0-3 or 0,2');
  for (const range of list.split(',')) {
    const [lo, hi] = range.split('-').map(Number);
    if (hi !== undefined && hi < lo!) throw usage(flag, v, `the range ${range} runs backwards`);
  }
  return list;
}

function usage(flag: string, v: string, why: string): BuildError {
  return new BuildError('USAGE', `${flag} ${JSON.stringify(v)}: ${why}`);
}

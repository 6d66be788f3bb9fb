/**
 * The host-dependent half of RUN limits, on made-up hosts (this machine has only one layout):
 * where runc puts a RUN's cgroup for v1, hybrid and v2 mount tables, and how flags become cgroup
 * settings when a controller or swap accounting is missing.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { cgroupParents, type CgroupHost, type Controller } from '../../../src/runtime/cgroup-host.js';
import { toRuntimeSpec, type ExecRequest } from '../../../src/runtime/spec.js';
import { cgroupLimitsFor, DEFAULT_PIDS_LIMIT } from '../../../src/solver/ops/run-cgroups.js';
import { parseRunLimits } from '../../../src/cli/run-limit-flags.js';
import { formatByteSizeFlag } from '../../../src/byte-size.js';
import { BuildError } from '../../../src/errors.js';

const test = suite('cgroup limits');

const V1_MOUNTS = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd`;
const V1_SELF = `9:name=systemd:/user.slice
8:pids:/user.slice/user-0.slice
4:memory:/process_api/abc
3:cpuset:/
1:cpu,cpuacct:/user.slice
0::/`;

test('v1: under our own cgroup of each hierarchy (co-mounted cpu,cpuacct too)', () => {
  const { layout, parents } = cgroupParents(V1_MOUNTS, V1_SELF);
  assert.is(layout, 'v1');
  assert.equal(Object.fromEntries(parents), {
    memory: '/sys/fs/cgroup/memory/process_api/abc',
    cpu: '/sys/fs/cgroup/cpu,cpuacct/user.slice',
    cpuset: '/sys/fs/cgroup/cpuset',
    pids: '/sys/fs/cgroup/pids/user.slice/user-0.slice',
  });
});

test('hybrid: the v1 controllers, the empty unified tree aside', () => {
  const { layout, parents } = cgroupParents(`${V1_MOUNTS}\n41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw`, V1_SELF);
  assert.is(layout, 'hybrid');
  assert.is(parents.get('memory'), '/sys/fs/cgroup/memory/process_api/abc');
});

test('v2: beside our own cgroup (its parent), every controller in the one tree', () => {
  const { layout, parents } = cgroupParents('25 1 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate', '0::/system.slice/ci.service\n');
  assert.is(layout, 'v2');
  for (const c of ['memory', 'cpu', 'cpuset', 'pids'] as Controller[]) assert.is(parents.get(c), '/sys/fs/cgroup/system.slice');
});

test('a cgroup namespace (mount root below /) and no cgroups at all', () => {
  const ns = cgroupParents('35 31 0:32 /docker/x /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory', '4:memory:/docker/x\n');
  assert.is(ns.parents.get('memory'), '/sys/fs/cgroup/memory');
  const none = cgroupParents('22 1 0:21 / /proc rw - proc proc rw', '');
  assert.is(none.layout, 'none');
  assert.is(none.parents.size, 0);
});

const host = (controllers: Controller[], more: Partial<CgroupHost> = {}): CgroupHost => ({
  layout: 'v1',
  parents: new Map(controllers.map((c) => [c, `/sys/fs/cgroup/${c}`])),
  swapAccounting: true,
  cpus: '0-3',
  mems: '0',
  ...more,
});
const ALL: Controller[] = ['memory', 'cpu', 'cpuset', 'pids'];

test('flags → cgroup settings: --cpus as quota over 100 ms, swap twice --memory, the default pids limit', () => {
  assert.equal(cgroupLimitsFor(undefined, host(ALL)), { limits: { pids: { limit: DEFAULT_PIDS_LIMIT } } });
  const r = cgroupLimitsFor({ memory: 32 << 20, cpus: 1.5, cpuShares: 512, cpusetCpus: '1-2', pidsLimit: 50 }, host(ALL));
  assert.equal(r.limits, {
    memory: { limit: 32 << 20, swap: 64 << 20 },
    cpu: { shares: 512, period: 100000, quota: 150000, cpus: '1-2' },
    pids: { limit: 50 },
  });
  assert.equal(cgroupLimitsFor({ memory: 32 << 20, memorySwap: -1, pidsLimit: 0 }, host(ALL)).limits, { memory: { limit: 32 << 20, swap: -1 } }, '0 lifts the pids limit');
  assert.equal(cgroupLimitsFor({ cpuPeriod: 50000, cpuQuota: 25000 }, host(ALL)).limits.cpu, { period: 50000, quota: 25000 });
});

test('no swap accounting: the default swap is left out, an explicit --memory-swap is an error', () => {
  const noSwap = host(ALL, { swapAccounting: false });
  assert.equal(cgroupLimitsFor({ memory: 32 << 20 }, noSwap).limits.memory, { limit: 32 << 20 });
  assert.equal(cgroupLimitsFor({ memory: 32 << 20, memorySwap: -1 }, noSwap).limits.memory, { limit: 32 << 20 });
  assert.throws(() => cgroupLimitsFor({ memory: 32 << 20, memorySwap: 64 << 20 }, noSwap), (e: Error) => e instanceof BuildError && /^--memory-swap needs swap accounting/.test(e.message));
});

test('a missing controller: an error naming the flag when asked for, one warning for the default pids limit', () => {
  const cases: [Parameters<typeof cgroupLimitsFor>[0], Controller, RegExp][] = [
    [{ memory: 32 << 20 }, 'memory', /^--memory needs the memory cgroup controller/],
    [{ cpus: 1 }, 'cpu', /^--cpus needs the cpu cgroup controller/],
    [{ cpuShares: 100 }, 'cpu', /^--cpu-shares needs the cpu/],
    [{ cpusetCpus: '0' }, 'cpuset', /^--cpuset-cpus needs the cpuset/],
    [{ pidsLimit: 10 }, 'pids', /^--pids-limit needs the pids cgroup controller/],
  ];
  for (const [limits, missing, re] of cases) {
    assert.throws(() => cgroupLimitsFor(limits, host(ALL.filter((c) => c !== missing))), (e: Error) => e instanceof BuildError && e.code === 'RUNTIME' && re.test(e.message), String(re));
  }
  const noPids = cgroupLimitsFor(undefined, host(['memory', 'cpu']));
  assert.equal(noPids.limits, {});
  assert.match(noPids.warning!, /no pids cgroup controller here: RUN steps run without the default limit of 2048 processes/);
  assert.equal(cgroupLimitsFor({ pidsLimit: 0 }, host([])), { limits: {} }, '--pids-limit -1 needs no controller');
});

test('rootless (in a user namespace): a limit without a writable controller names the mode; the default pids limit goes silently', () => {
  const rootless = { userNamespace: true };
  assert.throws(
    () => cgroupLimitsFor({ memory: 32 << 20 }, host([]), rootless),
    (e: Error) => e instanceof BuildError && /^--memory needs the memory cgroup controller, which tsbuild cannot use in rootless mode/.test(e.message) && /delegated/.test(e.message),
  );
  assert.equal(cgroupLimitsFor(undefined, host([]), rootless), { limits: {} }, 'no warning: the normal case there');
  // A delegated subtree (the probe found it writable): limits work as for root.
  assert.equal(cgroupLimitsFor({ memory: 32 << 20 }, host(ALL, { layout: 'v2' }), rootless).limits, { memory: { limit: 32 << 20, swap: 64 << 20 }, pids: { limit: DEFAULT_PIDS_LIMIT } });
});

test('host-dependent values: more CPUs than there are, CPUs outside the allowed set', () => {
  assert.throws(() => cgroupLimitsFor({ cpus: 4.5 }, host(ALL)), /--cpus 4.5: only 4 CPUs are available here/);
  assert.throws(() => cgroupLimitsFor({ cpusetCpus: '2-5' }, host(ALL)), /--cpuset-cpus 2-5: CPUs 4,5 not available here \(available: 0-3\)/);
  assert.throws(() => cgroupLimitsFor({ cpusetMems: '1' }, host(ALL)), /--cpuset-mems 1: memory nodes 1 not available/);
});

test('the runtime spec carries the limits in linux.resources, beside the device rule', () => {
  const req: ExecRequest = { rootfs: '/r', args: ['true'], env: [], cwd: '/', uid: 0, gid: 0, additionalGids: [], hostname: 'h', network: 'host', mounts: [] };
  assert.equal(toRuntimeSpec(req).linux?.resources, { devices: [{ allow: false, access: 'rwm' }] });
  const spec = toRuntimeSpec({ ...req, cgroupLimits: { memory: { limit: 1 << 25, swap: 1 << 26 }, cpu: { quota: 50000, period: 100000 }, pids: { limit: 2048 } } });
  assert.equal(spec.linux?.resources, {
    devices: [{ allow: false, access: 'rwm' }],
    memory: { limit: 1 << 25, swap: 1 << 26 },
    cpu: { quota: 50000, period: 100000 },
    pids: { limit: 2048 },
  });
});

test('flag parsing: sizes, -1, normalized lists; nothing given → undefined (cache keys as before)', () => {
  assert.is(parseRunLimits({}), undefined);
  assert.equal(parseRunLimits({ memory: '512m', memorySwap: '1g', cpus: '0.5', cpusetCpus: '0, 2-3', pidsLimit: '-1' }), {
    memory: 512 << 20,
    memorySwap: 1 << 30,
    cpus: 0.5,
    cpusetCpus: '0,2-3',
    pidsLimit: 0,
  });
  assert.equal(parseRunLimits({ memory: '1g', memorySwap: '-1' }), { memory: 1 << 30, memorySwap: -1 });
  assert.throws(() => parseRunLimits({ cpus: '1e3' }), /--cpus "1e3"/);
  assert.is(parseRunLimits({ memory: '0', memorySwap: '0', cpus: '0.0', cpuShares: '0', cpuPeriod: '0', cpuQuota: '0' }), undefined, 'as docker, 0 is not set');
  assert.equal(parseRunLimits({ pidsLimit: '0' }), { pidsLimit: 0 }, '--pids-limit 0 is set: no limit');
  for (const [n, s] of [[32 << 20, '32m'], [1 << 30, '1g'], [1536 << 10, '1536k'], [1000, '1000']] as const) assert.is(formatByteSizeFlag(n), s);
});

test.run();

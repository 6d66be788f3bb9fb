import type { Mount, RuntimeConfig } from '../../schemas/types/runtime-config.js';
import { defaultSeccomp } from './seccomp.js';

/** A bind (or tmpfs) mount into the container, e.g. the per-container /etc/hosts or a RUN --mount. */
export interface BindMount {
  readonly destination: string;
  readonly source: string;
  readonly type: 'bind' | 'tmpfs';
  readonly options: readonly string[];
}

type LinuxResources = NonNullable<NonNullable<RuntimeConfig['linux']>['resources']>;

/** Cgroup limits of a sandbox, in the runtime spec's terms (`memory.swap` is memory plus swap). */
export interface CgroupLimits {
  readonly memory?: { readonly limit: number; readonly swap?: number };
  readonly cpu?: { readonly shares?: number; readonly quota?: number; readonly period?: number; readonly cpus?: string; readonly mems?: string };
  readonly pids?: { readonly limit: number };
}

/** Everything needed to run one process in a sandbox; plain data, independent of the runtime. */
export interface ExecRequest {
  /** Absolute host path of the (mounted) root filesystem. */
  readonly rootfs: string;
  readonly args: readonly string[];
  /** `KEY=value` entries, in order. */
  readonly env: readonly string[];
  /** Absolute path inside the container. */
  readonly cwd: string;
  readonly uid: number;
  readonly gid: number;
  /** Supplementary groups; the spec adds `gid` in front (see toRuntimeSpec). */
  readonly additionalGids: readonly number[];
  readonly hostname: string;
  /** `host` shares the host's network namespace; `none` gets a fresh one with only `lo`. */
  readonly network: 'host' | 'none';
  readonly mounts: readonly BindMount[];
  /** RUN --security=insecure: these capabilities (all the builder has), nothing masked or read-only in /proc and /sys. */
  readonly privileged?: { readonly capabilities: readonly string[] };
  /** Resource limits replacing the defaults of the same type (RLIMIT_NOFILE 1048576 otherwise). */
  readonly rlimits?: readonly { readonly type: string; readonly soft: number; readonly hard: number }[];
  /** Size of /dev/shm in bytes; default 64 MiB, as docker. */
  readonly shmSize?: number;
  /** Limits of the container's cgroup (runc creates one per container either way). */
  readonly cgroupLimits?: CgroupLimits;
  /**
   * `tsbuild run -t`: the process gets a pseudo-terminal, which runc (in the foreground) sets up
   * and relays to its own stdio, the caller's terminal. Never for RUN steps.
   */
  readonly terminal?: boolean;
  /** With `terminal`: the pty's size from the start (runc follows later changes itself). */
  readonly consoleSize?: { readonly height: number; readonly width: number };
}

/** Docker's / containerd's default capability set. */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

/** containerd's defaults (a superset of `runc spec`'s), as BuildKit uses them. */
const MASKED_PATHS = [
  '/proc/acpi',
  '/proc/asound',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/sys/firmware',
  '/sys/devices/virtual/powercap',
  '/proc/scsi',
];
const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

/** Like docker: builds routinely open many files, and runc's default of 1024 is too low. */
const NOFILE = 1048576;

function defaultMounts(shmSize: number): Mount[] {
  return [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    {
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
    },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', `size=${Math.ceil(shmSize / 1024)}k`] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
  ];
}

/** How the runtime will run the container. */
export interface RuntimeSpecOptions {
  /**
   * tsbuild runs in a user namespace of its own (rootless, or root without CAP_SYS_ADMIN), so
   * runc does too, as `runc spec --rootless` expects: what only the initial namespace may do is
   * left out (see `inUserNamespace`). Cgroup limits stay: run-cgroups.ts only asks for them when
   * a delegated subtree can take them.
   */
  readonly inUserNamespace?: boolean;
}

/**
 * The default mounts adapted to a user namespace, as `runc spec --rootless` adapts them: sysfs
 * may only be mounted by the owner of the network namespace, so without a network namespace of
 * the container's own the host's /sys is bind-mounted read-only instead (with /sys/fs/cgroup in
 * it, so no cgroup mount; `rro`, runc ≥ 1.1 on Linux ≥ 5.12, makes its submounts read-only too: with an
 * identity map the host's cgroup files would otherwise be writable by the container's root);
 * `uid=`/`gid=` options go, as those ids may be unmapped (devpts gid=5).
 * Device nodes need nothing here: runc bind-mounts them from the host in a user namespace.
 */
function inUserNamespace(mounts: Mount[], ownNetwork: boolean): Mount[] {
  return mounts.flatMap((m): Mount[] => {
    if (m.destination === '/sys' && !ownNetwork) return [{ destination: '/sys', type: 'bind', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro', 'rro'] }];
    if (m.destination === '/sys/fs/cgroup' && !ownNetwork) return [];
    return [{ ...m, options: (m.options ?? []).filter((o) => !/^[ug]id=/.test(o)) }];
  });
}

function resources(limits: CgroupLimits | undefined): Omit<LinuxResources, 'devices'> {
  if (!limits) return {};
  return {
    ...(limits.memory ? { memory: { ...limits.memory } } : {}),
    ...(limits.cpu ? { cpu: { ...limits.cpu } } : {}),
    ...(limits.pids ? { pids: { ...limits.pids } } : {}),
  };
}

/**
 * The OCI runtime config (config.json) for `req`. Pure: same request, same JSON.
 *
 * Follows BuildKit's RUN defaults (containerd's default spec minus /run, plus a read-only
 * cgroup mount), with two choices made explicit:
 * - capabilities: root gets the default set as bounding, effective and permitted; a non-root
 *   user gets it as bounding only, as moby does ("to match what execve does") — otherwise
 *   `USER app` would run with root's capabilities under runc. No ambient capabilities.
 * - network `host` adds no network namespace (the host's is shared); `none` adds an empty one.
 * No seccomp profile and no AppArmor: not applied yet. Default devices (null, zero, full,
 * random, urandom, tty) are created and allowed by runc itself.
 */
export function toRuntimeSpec(req: ExecRequest, opts: RuntimeSpecOptions = {}): RuntimeConfig {
  const caps = [...(req.privileged?.capabilities ?? DEFAULT_CAPABILITIES)];
  const capabilities = req.uid === 0 ? { bounding: caps, effective: [...caps], permitted: [...caps] } : { bounding: caps };
  const namespaces: { type: 'pid' | 'ipc' | 'uts' | 'mount' | 'network' }[] = [
    { type: 'pid' },
    { type: 'ipc' },
    { type: 'uts' },
    { type: 'mount' },
  ];
  if (req.network === 'none') namespaces.push({ type: 'network' });
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: req.terminal ?? false,
      ...(req.terminal && req.consoleSize ? { consoleSize: { ...req.consoleSize } } : {}),
      // The primary gid is listed too (containerd/moby fix for CVE-2023-25173): with an empty
      // list, group-deny permissions (e.g. mode 0705 owned by our gid) would not apply after a
      // setgid exec changes the effective gid.
      user: { uid: req.uid, gid: req.gid, additionalGids: [...new Set([req.gid, ...req.additionalGids])] },
      args: [...req.args],
      env: [...req.env],
      cwd: req.cwd,
      capabilities,
      rlimits: [
        ...(req.rlimits?.some((r) => r.type === 'RLIMIT_NOFILE') ? [] : [{ type: 'RLIMIT_NOFILE', hard: NOFILE, soft: NOFILE }]),
        ...(req.rlimits ?? []).map((r) => ({ type: r.type, soft: r.soft, hard: r.hard })),
      ],
      noNewPrivileges: false,
    },
    root: { path: req.rootfs, readonly: false },
    hostname: req.hostname,
    mounts: [
      ...(opts.inUserNamespace ? inUserNamespace(defaultMounts(req.shmSize ?? 64 << 20), namespaces.some((n) => n.type === 'network')) : defaultMounts(req.shmSize ?? 64 << 20)),
      ...req.mounts.map((m) => ({ destination: m.destination, type: m.type, source: m.source, options: [...m.options] })),
    ],
    linux: {
      resources: { devices: [{ allow: false, access: 'rwm' }], ...resources(req.cgroupLimits) },
      namespaces,
      maskedPaths: req.privileged ? [] : [...MASKED_PATHS],
      readonlyPaths: req.privileged ? [] : [...READONLY_PATHS],
      // --security=insecure runs unconfined, as in BuildKit.
      ...(req.privileged ? {} : { seccomp: defaultSeccomp() }),
    },
  };
}

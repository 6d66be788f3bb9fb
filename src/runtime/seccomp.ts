import type { Linux, Syscall } from '../../schemas/types/runtime-config.js';

type Seccomp = NonNullable<Linux['seccomp']>;

/** errno values returned instead of running a filtered syscall. */
const EPERM = 1;
const ENOSYS = 38;
const CLONE_NEWUSER = 0x10000000;

/** Seccomp architecture names for the host (and the 32-bit modes it also runs). */
const ARCHES: Readonly<Record<string, readonly string[]>> = {
  x64: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
  arm64: ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM'],
  arm: ['SCMP_ARCH_ARM'],
  ppc64: ['SCMP_ARCH_PPC64LE'],
  s390x: ['SCMP_ARCH_S390X', 'SCMP_ARCH_S390'],
  riscv64: ['SCMP_ARCH_RISCV64'],
};

/**
 * Kernel interfaces a build step never needs and that have been the way out of containers:
 * kernel modules, kexec, reboot, keyrings, eBPF, perf, userfaultfd, file handles, swap,
 * accounting, quotas, the clock, I/O ports, mount and namespace switching.
 */
const DENIED: readonly string[] = [
  'acct', 'add_key', 'bpf', 'clock_adjtime', 'clock_settime', 'clock_settime64', 'create_module', 'delete_module',
  'finit_module', 'fsconfig', 'fsmount', 'fsopen', 'fspick', 'get_kernel_syms', 'init_module', 'ioperm', 'iopl',
  'kexec_file_load', 'kexec_load', 'keyctl', 'lookup_dcookie', 'mount', 'mount_setattr', 'move_mount', 'name_to_handle_at',
  'nfsservctl', 'open_by_handle_at', 'open_tree', 'perf_event_open', 'pivot_root', 'query_module', 'quotactl', 'quotactl_fd',
  'reboot', 'request_key', 'setns', 'settimeofday', 'stime', 'swapoff', 'swapon', 'sysfs', '_sysctl', 'umount', 'umount2',
  'uselib', 'userfaultfd', 'ustat', 'vm86', 'vm86old',
];

/**
 * The seccomp filter of every RUN (not with --security=insecure, as in BuildKit). Docker's and
 * BuildKit's default profile is an allowlist of some 350 syscalls; this is its deny side:
 * everything runs except the interfaces above, and new user namespaces (`clone`/`unshare` with
 * CLONE_NEWUSER, the usual first step of a kernel exploit from an unprivileged process).
 * `clone3` passes its flags in memory a filter can't read, so it answers ENOSYS and libc falls
 * back to `clone`, as under Docker's profile. Capabilities already stop most of these for a
 * root without CAP_SYS_ADMIN; the filter also covers what capabilities don't (keyrings, bpf
 * and perf for unprivileged users, userfaultfd, user namespaces).
 */
export function defaultSeccomp(arch: string = process.arch): Seccomp {
  const newUser: Syscall['args'] = [{ index: 0, value: CLONE_NEWUSER, valueTwo: CLONE_NEWUSER, op: 'SCMP_CMP_MASKED_EQ' }];
  return {
    defaultAction: 'SCMP_ACT_ALLOW',
    architectures: [...(ARCHES[arch] ?? [])] as Seccomp['architectures'],
    syscalls: [
      { names: DENIED as Syscall['names'], action: 'SCMP_ACT_ERRNO', errnoRet: EPERM },
      { names: ['clone', 'unshare'], action: 'SCMP_ACT_ERRNO', errnoRet: EPERM, args: newUser },
      { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS },
    ],
  };
}

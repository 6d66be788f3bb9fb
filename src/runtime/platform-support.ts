import { readFileSync } from 'node:fs';
import { hostPlatform, type Platform } from '../oci/image.js';
import { formatPlatform } from '../oci/platform.js';

/** binfmt_misc handler names (qemu-user's) by OCI architecture. */
const QEMU_NAMES: Readonly<Record<string, string>> = {
  amd64: 'x86_64', arm64: 'aarch64', arm: 'arm', '386': 'i386', ppc64le: 'ppc64le', s390x: 's390x', riscv64: 'riscv64', mips64le: 'mips64el', loong64: 'loongarch64',
};

/**
 * Why a RUN for `p` can't execute on this machine, or undefined when it can: natively (the
 * host's architecture, or 386 on amd64) or through an emulator registered with binfmt_misc
 * (qemu-user-static's `qemu-<arch>` entries), which the kernel then uses inside the sandbox.
 */
export function cannotRunReason(p: Platform): string | undefined {
  const host = hostPlatform();
  if (p.os !== 'linux') return `tsbuild runs Linux binaries only, and this is a ${formatPlatform(host)} machine`;
  if (p.architecture === host.architecture || (host.architecture === 'amd64' && p.architecture === '386')) return undefined;
  const name = QEMU_NAMES[p.architecture];
  if (name && binfmtEnabled(`qemu-${name}`)) return undefined;
  return `this is a ${formatPlatform(host)} machine and no emulator for ${p.architecture} is registered with binfmt_misc`;
}

function binfmtEnabled(entry: string): boolean {
  try {
    return readFileSync(`/proc/sys/fs/binfmt_misc/${entry}`, 'utf8').split('\n')[0] === 'enabled';
  } catch {
    return false;
  }
}

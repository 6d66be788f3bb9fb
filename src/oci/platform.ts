import { BuildError, type ErrorCode } from '../errors.js';
import type { Platform } from './image.js';

/** Architecture spellings other tools use for the OCI names (containerd's platforms.Normalize). */
const ARCH_ALIASES: Readonly<Record<string, Platform['architecture']>> = { x86_64: 'amd64', 'x86-64': 'amd64', aarch64: 'arm64', i386: '386', i686: '386', armhf: 'arm', armel: 'arm' };

/**
 * containerd's normalizeArch (vendor/github.com/containerd/platforms/database.go in BuildKit):
 * `arm` without a variant is v7 (armhf v7, armel v6), bare variant numbers get their `v`, and
 * the default variants of amd64 (v1) and arm64 (v8) are dropped; 386 has none.
 */
function normalizeVariant(rawArch: string, arch: string, variant: string | undefined): string | undefined {
  if (rawArch === 'armhf') return 'v7';
  if (rawArch === 'armel') return 'v6';
  if (arch === '386') return undefined;
  if (arch === 'amd64') return variant === 'v1' ? undefined : variant;
  if (arch === 'arm64') return variant === '8' || variant === 'v8' || variant === 'v8.0' ? undefined : variant === '9' || variant === '9.0' || variant === 'v9.0' ? 'v9' : variant;
  if (arch === 'arm') return variant === undefined || variant === '7' ? 'v7' : variant === '5' || variant === '6' || variant === '8' ? `v${variant}` : variant;
  return variant;
}

export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? '/' + p.variant : ''}`;
}

/**
 * `linux/arm64`, `linux/arm/v7`, `linux/x86_64` → Platform, normalized as containerd does (os
 * lower case, architecture aliases, variants as normalizeVariant: `linux/arm` is `linux/arm/v7`). `code` is the error's
 * code: USAGE for a flag, INVALID_INSTRUCTION for `FROM --platform`.
 */
export function parsePlatform(s: string, code: ErrorCode = 'USAGE'): Platform {
  const parts = s.trim().split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => p === '')) {
    throw new BuildError(code, `invalid platform ${JSON.stringify(s)}: expected os/arch[/variant]`);
  }
  const os = parts[0]!.toLowerCase();
  const rawArch = parts[1]!.toLowerCase();
  const architecture = ARCH_ALIASES[rawArch] ?? rawArch;
  const variant = normalizeVariant(rawArch, architecture, parts[2]?.toLowerCase());
  return { os, architecture, ...(variant ? { variant } : {}) };
}

/**
 * The entry of an index for `platform`, as containerd picks: os and architecture must match,
 * and the variant too when both name one; an exact variant match wins, then the first
 * compatible entry. Undefined when none fits.
 */
export function matchPlatform<T extends { readonly platform?: Platform }>(entries: readonly T[], platform: Platform): T | undefined {
  const compatible = entries.filter(
    (e) => e.platform?.os === platform.os && e.platform.architecture === platform.architecture && (!platform.variant || !e.platform.variant || platform.variant === e.platform.variant),
  );
  return compatible.find((e) => e.platform?.variant === platform.variant) ?? compatible[0];
}

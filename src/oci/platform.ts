import { BuildError, type ErrorCode } from '../errors.js';
import type { Platform } from './image.js';

/** Architecture spellings other tools use for the OCI names (containerd's platforms.Normalize). */
const ARCH_ALIASES: Readonly<Record<string, Platform['architecture']>> = { x86_64: 'amd64', 'x86-64': 'amd64', aarch64: 'arm64', i386: '386', i686: '386' };

export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? '/' + p.variant : ''}`;
}

/**
 * `linux/arm64`, `linux/arm/v7`, `linux/x86_64` → Platform, normalized as containerd does (os
 * lower case, architecture aliases, arm64's default variant v8 dropped). `code` is the error's
 * code: USAGE for a flag, INVALID_INSTRUCTION for `FROM --platform`.
 */
export function parsePlatform(s: string, code: ErrorCode = 'USAGE'): Platform {
  const parts = s.trim().split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => p === '')) {
    throw new BuildError(code, `invalid platform ${JSON.stringify(s)}: expected os/arch[/variant]`);
  }
  const os = parts[0]!.toLowerCase();
  const architecture = ARCH_ALIASES[parts[1]!.toLowerCase()] ?? parts[1]!.toLowerCase();
  let variant: string | undefined = parts[2]?.toLowerCase();
  if (architecture === 'arm64' && (variant === 'v8' || variant === '8')) variant = undefined;
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

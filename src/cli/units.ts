import { parseGoDuration } from '../frontend/go-duration.js';

/**
 * `512`, `10k`, `500MB`, `1.5GiB` → bytes. Every unit is a power of 1024, as docker's
 * `--keep-storage` and buildkitd's GC sizes read them (k, kb and kib all mean 1024).
 * Undefined when `s` is not a size; callers word the error for their flag or key.
 */
export function parseByteSize(s: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*(?:([kmgt])(i?b)?|b)?$/i.exec(s.trim());
  if (!m) return undefined;
  const power = m[2] ? 'kmgt'.indexOf(m[2].toLowerCase()) + 1 : 0;
  return Math.floor(Number(m[1]) * 1024 ** power);
}

/**
 * A Go duration (`90m`, `1h30m`, `500ms`) or whole days (`7d`, which Go lacks but GC settings
 * want) → milliseconds; undefined when `s` is neither.
 */
export function parseDurationMs(s: string): number | undefined {
  const days = /^(\d+)d$/.exec(s.trim());
  if (days) return Number(days[1]) * 86_400_000;
  try {
    return parseGoDuration(s.trim()) / 1e6;
  } catch {
    return undefined;
  }
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

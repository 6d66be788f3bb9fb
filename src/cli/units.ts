import { parseGoDuration } from '../frontend/go-duration.js';

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

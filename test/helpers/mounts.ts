import { readFileSync } from 'node:fs';

/** Mount points (from /proc/self/mounts) at or below `prefix`. Tests assert this is empty after each case. */
export function mountsUnder(prefix: string): string[] {
  return readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[1])
    .filter((p): p is string => !!p && (p === prefix || p.startsWith(prefix.endsWith('/') ? prefix : prefix + '/')));
}

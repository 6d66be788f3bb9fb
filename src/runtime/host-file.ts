import { readFileSync } from 'node:fs';

/**
 * A small fixed file of the host or of this process (/proc, /sys), read on the calling thread:
 * undefined when it is absent or unreadable (a sysctl this kernel lacks).
 */
export function readHostFile(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

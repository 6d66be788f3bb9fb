import { readFileSync } from 'node:fs';

/**
 * A small file tsbuild trusts, read on the calling thread: of the host or of this process
 * (/proc, /sys), or of tsbuild's own store. Undefined when it is absent or unreadable (a sysctl
 * this kernel lacks).
 */
export function readHostFile(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

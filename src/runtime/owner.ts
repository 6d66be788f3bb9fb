import { readFile } from 'node:fs/promises';

/**
 * Identifies a live process across pid reuse: `<pid> <start time in clock ticks>` (field 22 of
 * /proc/<pid>/stat). Several tsbuild processes may share one root, so cleanup of mounts and
 * containers must only touch what a dead process left behind.
 */
export async function currentOwner(): Promise<string> {
  return `${process.pid} ${await startTime(process.pid)}`;
}

/** True while the process recorded by `currentOwner()` still runs. Malformed tokens count as dead. */
export async function isOwnerAlive(owner: string): Promise<boolean> {
  const m = /^(\d+) (\d+)$/.exec(owner.trim());
  if (!m) return false;
  try {
    return (await startTime(Number(m[1]))) === m[2];
  } catch {
    return false;
  }
}

async function startTime(pid: number): Promise<string> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // comm (field 2) may contain spaces and parentheses: count fields after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return rest[22 - 3]!;
}

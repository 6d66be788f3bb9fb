import { readFileSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';

/**
 * Identifies a live process across pid reuse: `<pid> <start time in clock ticks>` (field 22 of
 * /proc/<pid>/stat). Several tsbuild processes may share one root, so cleanup of mounts and
 * containers must only touch what a dead process left behind.
 */
export async function currentOwner(): Promise<string> {
  return ownToken();
}

let own: string | undefined;

/**
 * This process's token, read once: a start time never changes, and the read was four
 * thread-pool round trips of every build's start, once per caller. A memo of a fixed fact of the
 * process, not state anything changes.
 */
function ownToken(): string {
  own ??= `${process.pid} ${startTimeOf(readFileSync('/proc/self/stat', 'utf8'))}`;
  return own;
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
  return startTimeOf(await readFile(`/proc/${pid}/stat`, 'utf8'));
}

function startTimeOf(stat: string): string {
  // comm (field 2) may contain spaces and parentheses: count fields after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return rest[22 - 3]!;
}

/**
 * A working dir (an overlay mount's, a chroot copy's) whose creator is gone: its hidden
 * `.new-<pid>-<start>-` or `.del-<pid>-<start>-` name names a dead process, or (a published
 * dir) its `owner` file does. Dirs of an older naming without either count after a minute.
 */
export async function isStaleOwnedDir(base: string): Promise<boolean> {
  // The hidden name first: a `.new-` dir's owner file may be being written (read empty, so
  // "malformed", so dead) while its live creator is about to publish it.
  const named = /^\.(?:new|del)-(\d+)-(\d+)-/.exec(basename(base));
  if (named) return !(await isOwnerAlive(`${named[1]} ${named[2]}`));
  try {
    return !(await isOwnerAlive(await readFile(join(base, 'owner'), 'utf8')));
  } catch {
    try {
      return Date.now() - (await stat(base)).mtimeMs > 60_000;
    } catch {
      return false;
    }
  }
}

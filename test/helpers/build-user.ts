import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { CLI, start as startProcess, type CliResult } from './cli.js';

const pexec = promisify(execFile);

/** A throw-away login user for rootless tests; see `withBuildUser`. */
export interface BuildUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
  /** Its /etc/subuid and /etc/subgid range (the same for both), if it was given one. */
  readonly subordinate?: { readonly start: number; readonly count: number };
  /** Runs `cmd` as this user (setpriv: its uid, gid and groups, a fresh login environment plus `env`). */
  run(cmd: string, args: readonly string[], opts?: { cwd?: string; env?: Readonly<Record<string, string>> }): Promise<CliResult>;
  /** Starts `cmd` as this user, like `run`, without waiting: `pid` is the user's process (setpriv and env exec it). */
  start(cmd: string, args: readonly string[], opts?: { cwd?: string; env?: Readonly<Record<string, string>>; ownProcessGroup?: boolean }): { readonly pid: number; readonly done: Promise<CliResult> };
  /** Runs the built tsbuild CLI as this user. */
  tsbuild(args: readonly string[], opts?: { cwd?: string; env?: Readonly<Record<string, string>> }): Promise<CliResult>;
  /** Pids of processes still running as this user or as one of its subordinate ids. */
  processes(): Promise<number[]>;
}

const RANGE = 65536;
const FIRST = 200_000;

/**
 * Creates a user with a unique name (`useradd --create-home`; no automatic subordinate ids),
 * optionally gives it a /etc/subuid and /etc/subgid range of 65536 ids overlapping no other
 * line (200000 + 65536·k, through `usermod --add-subuids`, which locks the files), runs `fn`,
 * and in `finally` kills the processes left running as that user or its subordinate ids (by
 * pid: only this test made them), removes the ranges and deletes the user and its home.
 */
export async function withBuildUser<T>(opts: { subordinateIds: boolean }, fn: (user: BuildUser) => Promise<T>): Promise<T> {
  const name = `tsbt${randomBytes(5).toString('hex')}`;
  // SUB_*_COUNT=0: Debian's useradd would otherwise allocate a range itself.
  await pexec('useradd', ['--create-home', '--shell', '/bin/sh', '-K', 'SUB_UID_COUNT=0', '-K', 'SUB_GID_COUNT=0', name]);
  let subordinate: { start: number; count: number } | undefined;
  try {
    const uid = Number((await pexec('id', ['-u', name])).stdout.trim());
    const gid = Number((await pexec('id', ['-g', name])).stdout.trim());
    const home = (await pexec('getent', ['passwd', name])).stdout.split(':')[5]!;
    if (opts.subordinateIds) {
      const start = await freeRange();
      subordinate = { start, count: RANGE };
      const range = `${start}-${start + RANGE - 1}`;
      await pexec('usermod', ['--add-subuids', range, '--add-subgids', range, name]);
    }
    const start: BuildUser['start'] = (cmd, args, o = {}) => {
      const envArgs = Object.entries({ NO_COLOR: '1', ...o.env }).map(([k, v]) => `${k}=${v}`);
      // setpriv --reset-env: the user's own login environment, not ours, plus envArgs.
      return startProcess('setpriv', ['--reuid', String(uid), '--regid', String(gid), '--init-groups', '--reset-env', '--', 'env', ...envArgs, cmd, ...args], {
        cwd: o.cwd ?? home,
        detached: o.ownProcessGroup ?? false,
      });
    };
    const run: BuildUser['run'] = (cmd, args, o) => start(cmd, args, o).done;
    const user: BuildUser = {
      name,
      uid,
      gid,
      home,
      ...(subordinate ? { subordinate } : {}),
      run,
      start,
      tsbuild: (args, o) => run(process.execPath, [CLI, ...args], o),
      processes: () => processesOf(uid, subordinate),
    };
    return await fn(user);
  } finally {
    const uid = Number((await pexec('id', ['-u', name]).catch(() => ({ stdout: '-1' }))).stdout.trim());
    for (let i = 0; i < 20; i++) {
      const left = uid >= 0 ? await processesOf(uid, subordinate) : [];
      if (left.length === 0) break;
      for (const pid of left) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    if (subordinate) {
      const range = `${subordinate.start}-${subordinate.start + RANGE - 1}`;
      await pexec('usermod', ['--del-subuids', range, '--del-subgids', range, name]).catch(() => undefined);
    }
    await pexec('userdel', ['--remove', name]).catch(async (e: { stderr?: string }) => {
      // userdel -r complains about a missing mail spool but still deletes; anything else is real.
      if (!/mail spool/.test(e.stderr ?? '') && (await pexec('id', [name]).then(() => true, () => false))) throw e;
    });
  }
}

/** The lowest 200000 + 65536·k range that overlaps no line of /etc/subuid or /etc/subgid. */
async function freeRange(): Promise<number> {
  const taken: [number, number][] = [];
  for (const f of ['/etc/subuid', '/etc/subgid']) {
    const text = await readFile(f, 'utf8').catch(() => '');
    for (const line of text.split('\n')) {
      const m = /^[^:#]+:(\d+):(\d+)$/.exec(line.trim());
      if (m) taken.push([Number(m[1]), Number(m[1]) + Number(m[2])]);
    }
  }
  for (let start = FIRST; ; start += RANGE) {
    if (!taken.some(([a, b]) => start < b && a < start + RANGE)) return start;
  }
}

/** Pids whose real uid is `uid` or in its subordinate range (container processes of its builds). */
async function processesOf(uid: number, sub: { start: number; count: number } | undefined): Promise<number[]> {
  const out: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const status = await readFile(`/proc/${name}/status`, 'utf8').catch(() => '');
    const ruid = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1] ?? -1);
    if (ruid === uid || (sub && ruid >= sub.start && ruid < sub.start + sub.count)) out.push(Number(name));
  }
  return out;
}

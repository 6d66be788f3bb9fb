import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';

const pexec = promisify(execFile);

export const HAVE_TMUX = existsSync('/usr/bin/tmux');

/** A command running under a real pseudo-terminal: its screen can be read and keys sent to it. */
export interface TmuxSession {
  screen(): Promise<string>;
  /** Waits (up to 30 s) until the screen matches, and returns it. */
  waitFor(pattern: RegExp): Promise<string>;
  send(...keys: string[]): Promise<void>;
}

/**
 * Runs `cmd` (a shell command line) in a detached tmux session of `width`×`height` on a private
 * tmux server (its own socket), hands it to `fn`, and kills that server in finally: nothing
 * else's sessions are touched.
 */
export async function withTmux<T>(cmd: string, size: { width: number; height: number }, fn: (s: TmuxSession) => Promise<T>): Promise<T> {
  const sock = `tsbuild-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const tmux = (...args: string[]) => pexec('tmux', ['-L', sock, ...args], { env: { PATH: process.env.PATH, TERM: 'xterm-256color', HOME: '/tmp' } });
  try {
    await tmux('new-session', '-d', '-s', 'p', '-x', String(size.width), '-y', String(size.height), cmd);
    const session: TmuxSession = {
      screen: async () => (await tmux('capture-pane', '-p', '-t', 'p')).stdout,
      async waitFor(pattern) {
        let screen = '';
        for (let i = 0; i < 300 && !pattern.test(screen); i++) {
          await new Promise((r) => setTimeout(r, 100));
          screen = await session.screen();
        }
        return screen;
      },
      send: async (...keys) => void (await tmux('send-keys', '-t', 'p', ...keys)),
    };
    return await fn(session);
  } finally {
    await tmux('kill-server').catch(() => undefined);
  }
}

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The bundle package.json's bin names (scripts/bundle.mjs): tests run the code users run. */
export const CLI = fileURLToPath(new URL('../../bin/tsbuild.cjs', import.meta.url));

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Starts `cmd`, collecting its output; stdin gets `input` (empty by default). With `detached`
 * its pid is its process group id, so a signal to -pid reaches everything it started.
 */
export function start(
  cmd: string,
  args: readonly string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string; detached?: boolean } = {},
): { readonly pid: number; readonly done: Promise<CliResult> } {
  const child = spawn(cmd, [...args], {
    cwd: opts.cwd,
    env: { ...process.env, NO_COLOR: '1', ...opts.env },
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: opts.detached ?? false,
  });
  const done = new Promise<CliResult>((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b) => (stdout += b));
    child.stderr.on('data', (b) => (stderr += b));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
  child.stdin.on('error', () => undefined);
  child.stdin.end(opts.input ?? '');
  return { pid: child.pid!, done };
}

/** Runs `cmd` to its end, collecting its output; stdin gets `input` (empty by default). */
export function collect(cmd: string, args: readonly string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<CliResult> {
  return start(cmd, args, opts).done;
}

/**
 * Runs the built tsbuild CLI as a separate process, as a user would: the file itself, whose first
 * lines are a shell script that starts node on it (see scripts/bundle.mjs).
 */
export function tsbuild(args: readonly string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<CliResult> {
  return collect(CLI, args, opts);
}

/**
 * The CLI as root without CAP_SYS_ADMIN (capsh drops it from the bounding set; `exec "$@"` then
 * runs node without it): mount(2) fails with EPERM, as in a default container, less its seccomp.
 */
export function tsbuildWithoutSysAdmin(args: readonly string[], opts: { env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  return collect('capsh', ['--drop=cap_sys_admin', '--', '-c', 'exec "$@"', 'sh', process.execPath, CLI, ...args], opts);
}

/** Like `tsbuild`, but throws with the output when the exit code is not 0. */
export async function tsbuildOk(args: readonly string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<CliResult> {
  const r = await tsbuild(args, opts);
  if (r.code !== 0) throw new Error(`tsbuild ${args.join(' ')} exited ${r.code}\n--- stderr ---\n${r.stderr}\n--- stdout ---\n${r.stdout}`);
  return r;
}

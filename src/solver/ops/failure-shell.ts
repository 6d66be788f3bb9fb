import type { Ctx } from '../../ctx.js';
import { BuildError } from '../../errors.js';
import type { BindMount, ExecRequest } from '../../runtime/spec.js';
import type { CommandRunner } from '../../runtime/command-runner.js';

/** The terminal, as the progress renderer and the shell share it. */
export interface TerminalHandoff {
  /** Stops progress output (after one last frame) and returns the function that resumes it. */
  take(): () => void;
  /** The terminal's size now, for the pty to start with. */
  size(): { readonly height: number; readonly width: number } | undefined;
  /** A line for the user, written while the terminal is taken. */
  say(line: string): void;
}

/**
 * `tsbuild build --on-error=shell[:CMD]` (buildx's `debug --on=error`): when a RUN fails, a
 * process on the caller's terminal in that RUN's container state. One per build: the first
 * failure claims it (the solver cancels everything else at once, see StepControl.failFast).
 */
export interface OnRunError {
  /** `shell:CMD`: CMD run by the stage's shell, as a shell-form RUN would run it; absent: that shell alone, interactive. */
  readonly command?: string;
  /** `--allow debug.secrets`: the shell also gets the RUN's secret mounts and env and its ssh sockets. */
  readonly withSecrets: boolean;
  readonly terminal: TerminalHandoff;
  /** True once, for the failure that gets the shell. */
  claim(): boolean;
}

/** Isolation chroot has no runc to give a process a pty: the build refuses --on-error=shell before it starts. */
export function refuseFailureShellIn(mode: string): BuildError {
  return new BuildError('USAGE', `--on-error=shell: isolation ${mode} cannot give the shell a terminal (it runs commands without runc)`, {
    hint: 'run tsbuild where runc works (as root, or a user with subordinate ids), or leave out --on-error',
  });
}

/** The build's --on-error=shell settings, claimable once. */
export function onRunErrorShell(opts: { command?: string; withSecrets: boolean; terminal: TerminalHandoff }): OnRunError {
  let claimed = false;
  return {
    ...(opts.command !== undefined ? { command: opts.command } : {}),
    withSecrets: opts.withSecrets,
    terminal: opts.terminal,
    claim: () => !claimed && (claimed = true),
  };
}

/** The stage's SHELL (default `/bin/sh -c`): its program alone, or with CMD as a shell-form RUN's argument. */
export function failureShellArgs(shell: readonly string[] | undefined, command: string | undefined): string[] {
  const sh = shell && shell.length > 0 ? shell : ['/bin/sh', '-c'];
  return command === undefined ? [sh[0]!] : [...sh, command];
}

/** What of the failed RUN's request the shell leaves out unless secrets are allowed. */
export interface RunSecrets {
  /** Secret and ssh-socket mounts. */
  readonly mounts: ReadonlySet<BindMount>;
  /** Secret env= entries and SSH_AUTH_SOCK. */
  readonly env: readonly string[];
}

/**
 * Runs the shell of `on` in the failed RUN's state: `run` is that RUN's request (same rootfs,
 * its writes included, env, user, workdir, mounts, network, limits), here with a terminal. The
 * shell's own writes go to the RUN's upperdir, which the caller discards. Returns the shell's
 * exit code (undefined when it could not start, which it reports); the caller still fails the
 * build with the RUN's error.
 */
export async function runFailureShell(runner: Pick<CommandRunner, 'run'>, run: ExecRequest, secrets: RunSecrets, on: OnRunError, shell: readonly string[] | undefined, failure: BuildError, ctx: Ctx): Promise<number | undefined> {
  const args = failureShellArgs(shell, on.command);
  const hidden = new Set(secrets.env);
  const env = run.env.filter((e) => on.withSecrets || !hidden.has(e));
  const size = on.terminal.size();
  const req: ExecRequest = {
    ...run,
    args,
    env: env.some((e) => e.startsWith('TERM=')) ? env : [...env, 'TERM=xterm'],
    mounts: run.mounts.filter((m) => on.withSecrets || !secrets.mounts.has(m)),
    terminal: true,
    ...(size ? { consoleSize: size } : {}),
  };
  const resume = on.terminal.take();
  try {
    on.terminal.say(`\n${failure.message}`);
    const left = secrets.mounts.size > 0 || secrets.env.length > 0 ? (on.withSecrets ? ' (with its secrets: --allow debug.secrets)' : ' (without its secrets and ssh sockets; --allow debug.secrets adds them)') : '';
    on.terminal.say(`--on-error=shell: running ${JSON.stringify(args.join(' '))} in the failed step's container${left}; exit it to end the build`);
    // A closed terminal window hangs up: the shell goes (and with it the container and mounts,
    // in the callers' finally blocks) instead of outliving a tsbuild that SIGHUP would kill.
    const hangup = new AbortController();
    const onHangup = () => hangup.abort(Object.assign(new Error('the terminal hung up'), { name: 'AbortError' }));
    process.on('SIGHUP', onHangup);
    const status = await runner
      .run(req, { onOutput: () => undefined }, { signal: AbortSignal.any([ctx.signal, hangup.signal]), events: ctx.events })
      .catch((e: unknown) => {
        // The build fails with the RUN's error either way; only Ctrl-C wins over it.
        if (ctx.signal.aborted) throw e;
        on.terminal.say(`--on-error=shell: ${hangup.signal.aborted ? 'the terminal hung up' : `the shell could not run: ${(e as Error).message}`}`);
        return undefined;
      })
      .finally(() => process.off('SIGHUP', onHangup));
    if (status) on.terminal.say(`--on-error=shell: ${JSON.stringify(args.join(' '))} exited with ${status.exitCode}; the build fails with the RUN's error`);
    return status?.exitCode;
  } finally {
    resume();
  }
}

import { BuildError } from '../errors.js';

/** `--on-error`: what a failed RUN does: fail (default), or open a shell in its state first. */
export type OnErrorChoice = { readonly action: 'fail' } | { readonly action: 'shell'; readonly command?: string };

/**
 * `fail`, `shell` or `shell:CMD` (CMD non-empty, run by the stage's shell). The shell needs this
 * process's stdin and stdout to be a terminal (runc relays its pty over them): without one, as
 * in CI, it is refused here, before anything is built.
 */
export function parseOnError(value: string | undefined, terminal: { stdin: boolean; stdout: boolean }): OnErrorChoice {
  if (value === undefined || value === 'fail') return { action: 'fail' };
  let choice: OnErrorChoice;
  if (value === 'shell') choice = { action: 'shell' };
  else if (value.startsWith('shell:') && value.slice(6).trim() !== '') choice = { action: 'shell', command: value.slice(6) };
  else {
    throw new BuildError('USAGE', `--on-error ${JSON.stringify(value)}: expected fail, shell or shell:CMD`, { hint: 'e.g. --on-error=shell, or --on-error=shell:"ls -l /tmp"' });
  }
  if (!terminal.stdin || !terminal.stdout) {
    throw new BuildError('USAGE', `--on-error=${value} needs a terminal (standard input and output must be one); CI has none`, {
      hint: 'run the build from a terminal, or leave out --on-error (the default, fail, just fails)',
    });
  }
  return choice;
}

import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { rootDirs } from '../root-dirs.js';
import { Command, Option } from 'commander';
import { BuildError } from '../errors.js';
import type { GlobalOptions } from './globals.js';
import { isolationSetting } from './isolation-setting.js';
import { stateRoot } from './state-root.js';

/**
 * `tsbuild info`: what this environment allows (the isolation probe), the mode a build would
 * use and why, the store root, and the versions of the programs RUN steps depend on.
 */
export function infoCommand(globals: GlobalOptions, setExit: (code: number) => void): Command {
  return new Command('info')
    .description('show the isolation mode builds use here and why, the store root and runtime versions')
    .addOption(new Option('--format <format>', 'text or json').choices(['text', 'json']).default('text'))
    .action(async (flags: { format: 'text' | 'json' }) => {
      // The runtimes are imported when info runs, not to define it (--help).
      const [{ chooseIsolation }, { probeIsolation }] = await Promise.all([import('../runtime/isolation.js'), import('../runtime/isolation-probe.js')]);
      const root = stateRoot(globals.root, process.env);
      await mkdir(root, { recursive: true, mode: 0o700 });
      const probe = await probeIsolation(root, rootDirs(root).tmp);
      const requested = isolationSetting(globals, process.env);
      let choice: { mode: string; reason: string; needsUserNamespace?: boolean } | { error: string };
      try {
        choice = chooseIsolation(probe, requested);
      } catch (e) {
        if (!(e instanceof BuildError)) throw e;
        choice = { error: e.message };
      }
      const versions = { runc: await firstLine('runc', ['--version']), slirp4netns: await firstLine('slirp4netns', ['--version']), newuidmap: await which('newuidmap') };
      const info = { root, requested, isolation: choice, probe, versions };
      if (flags.format === 'json') {
        process.stdout.write(JSON.stringify(info, null, 2) + '\n');
      } else {
        const mode = 'error' in choice ? `none: ${choice.error}` : `${choice.mode} (${choice.reason})${choice.needsUserNamespace ? '; tsbuild enters its user namespace at start' : ''}`;
        const lines = [
          `Isolation:        ${mode}${requested === 'auto' ? '' : ` [requested: ${requested}]`}`,
          `Store root:       ${root}`,
          `runc:             ${versions.runc}`,
          `slirp4netns:      ${versions.slirp4netns}`,
          `newuidmap:        ${versions.newuidmap}`,
          'Probe:',
          `  euid:                    ${probe.euid}${probe.inUserNamespace ? ' (in a user namespace)' : ''}`,
          `  CAP_SYS_ADMIN:           ${probe.capSysAdmin ? 'yes' : 'no'}`,
          `  CAP_SYS_CHROOT:          ${probe.capSysChroot ? 'yes' : 'no'}`,
          `  seccomp filter:          ${probe.seccompFilter ? 'yes' : 'no'}`,
          `  in a container:          ${probe.inContainer ? 'yes' : 'no'}`,
          `  user namespaces:         ${probe.userNamespaces === true ? 'yes' : `no (${probe.userNamespaces})`}`,
          `  overlay in a user ns:    ${probe.overlayInUserNamespace === true ? 'yes' : `no (${probe.overlayInUserNamespace})`}`,
          `  kernel:                  ${probe.kernel}`,
        ];
        process.stdout.write(lines.join('\n') + '\n');
      }
      setExit('error' in choice ? 1 : 0);
    });
}

function firstLine(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 5000 }, (err, out) => resolve(err ? `not found (${(err as NodeJS.ErrnoException).code ?? err.message})` : String(out).split('\n')[0]!.trim()));
  });
}

function which(cmd: string): Promise<string> {
  return firstLine('sh', ['-c', `command -v ${cmd}`]).then((s) => (s.startsWith('not found') ? 'not found' : s));
}

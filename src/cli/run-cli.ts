import { stat } from 'node:fs/promises';
import { Command, CommanderError, Option } from 'commander';
import { BuildError, isAbortError } from '../errors.js';
import { renderError } from './render-error.js';
import type { GlobalOptions } from './globals.js';
import { commandsFor } from './command-table.js';
import { loadConfig } from './config-file.js';
import { stateRoot } from './state-root.js';
import { checkOutputDest } from './output-dest.js';
import { effectiveSettings } from './config-command.js';
import { createStateRoot, enteredUserNamespace, runInUserNamespaceIfNeeded } from '../runtime/userns-reexec.js';
import { isolationSetting } from './isolation-setting.js';

/** How long cleanup may take after an interrupt (unmounting, killing a sandbox take well under a second). */
const CLEANUP_GRACE_MS = 15_000;

/** Verbs that never open the state root (`config` only prints where it is). */
const ROOTLESS_VERBS = new Set(['help', 'config', 'login', 'logout']);

/**
 * Runs one command line (`args`: verb first, global options taken out) and resolves to its exit
 * code (DESIGN.md): 0 ok, 1 build failed, 2 bad usage, 130 interrupted. main.ts loads this
 * module only for a command that needs it (not for `--version`).
 */
export async function runCli(globals: GlobalOptions, args: string[], version: string): Promise<number> {
  // The config file is read once, before any verb: a broken one is a usage error naming file:line.
  const rawRoot = globals.root;
  try {
    globals.settings = await loadConfig(globals.config, process.env);
  } catch (err) {
    return report(err, globals);
  }
  // Not root with CAP_SYS_ADMIN: run again as uid 0 of a user namespace of our own (userns-reexec.ts).
  // `info` describes the caller's own environment (and says the namespace would be entered).
  const touchesStore = args[0] !== undefined && !args[0].startsWith('-') && !ROOTLESS_VERBS.has(args[0]) && args[0] !== 'info';
  const exitCode = await Promise.resolve()
    .then(() => runInUserNamespaceIfNeeded({ touchesStore, isolation: isolationSetting(globals, process.env) }, process.env))
    .catch((err: unknown) => report(err, globals));
  if (exitCode !== undefined) return exitCode;
  globals.root = stateRoot(globals.root, process.env, globals.settings.config.root);
  if (args[0] !== undefined && !args[0].startsWith('-') && !ROOTLESS_VERBS.has(args[0])) {
    // The root is created and written into by every verb that opens it (even `images`): `/`,
    // `/proc` or `/etc` would be filled with store/, layers/…, so it is refused as a tree output.
    const source = effectiveSettings(rawRoot, globals.config, process.env, globals.settings).find((s) => s.key === 'root')!.source;
    const flag = source === '--root' ? '--root' : `state root (from ${source})`;
    try {
      await checkOutputDest(globals.root, 'tree', flag);
      const st = await stat(globals.root).catch(() => undefined);
      if (st && !st.isDirectory()) throw new BuildError('USAGE', `${flag} ${globals.root}: not a directory`);
      await createStateRoot(globals.root, process.env);
    } catch (err) {
      return report(err, globals);
    }
  }

  // The first signal aborts: work stops, sandboxes are killed, mounts and temp files cleaned.
  // A second one, or cleanup outlasting CLEANUP_GRACE_MS, ends the process at once.
  const ac = new AbortController();
  // In tsbuild's own user namespace one signal may arrive twice at once: sent to the process group
  // (timeout, systemd) and passed on by the tsbuild outside (userns-reexec.ts). That is not a second one.
  const sameSignalMs = enteredUserNamespace(process.env) ? 1000 : 0;
  let abortedAt = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    if (ac.signal.aborted && Date.now() - abortedAt < sameSignalMs) return;
    if (ac.signal.aborted) return forceExit('interrupted again');
    abortedAt = Date.now();
    ac.abort(Object.assign(new Error(`interrupted by ${sig}`), { name: 'AbortError' }));
    setTimeout(() => forceExit(`interrupted; cleanup did not finish within ${CLEANUP_GRACE_MS / 1000}s`), CLEANUP_GRACE_MS).unref();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const program = configure(new Command('tsbuild'))
    .description('Build OCI container images from Dockerfiles, without a daemon.')
    .version(version, '-V, --version')
    .addOption(new Option('--root <dir>', 'state directory (images, layers, cache)'))
    .addOption(new Option('--config <file>', 'tsbuild.toml to read'))
    .addOption(new Option('--isolation <mode>', 'how RUN steps are isolated: auto, overlay, rootless or chroot (default auto)'))
    .addOption(new Option('--debug', 'print stack traces'));
  let code = 0;
  try {
    for (const c of await commandsFor(args, { globals, signal: ac.signal, rawRoot, setExit: (c) => (code = c) })) program.addCommand(configure(c));
    await program.parseAsync(args, { from: 'user' });
    return code;
  } catch (err) {
    return report(err, globals);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** addCommand() does not pass settings down, so every command gets them here: errors come back to main(), which picks the exit code. */
function configure(cmd: Command): Command {
  return cmd
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s), outputError: (s, write) => write(s) })
    .showSuggestionAfterError(true);
}

function report(err: unknown, globals: GlobalOptions): number {
  if (err instanceof CommanderError) {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
    return 2;
  }
  if (isAbortError(err)) {
    process.stderr.write('interrupted\n');
    return 130;
  }
  process.stderr.write(renderError(err, { debug: globals.debug, cwd: process.cwd() }));
  return err instanceof BuildError && err.code === 'USAGE' ? 2 : 1;
}

/**
 * Ends the process now. Not process.exit(): it joins libuv's thread pool, so a thread blocked
 * in a wait nothing can cancel (open() of a FIFO no one writes to) would hang it too.
 */
export function forceExit(why: string): void {
  process.stderr.write(`${why}: killing tsbuild\n`);
  process.kill(process.pid, 'SIGKILL');
}

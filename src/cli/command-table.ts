import type { Command } from 'commander';
import type { GlobalOptions } from './globals.js';

/** What every command module's factory is given. */
export interface CommandKit {
  readonly globals: GlobalOptions;
  readonly signal: AbortSignal;
  /** The --root as given, before the config and defaults resolved it (`config` shows both). */
  readonly rawRoot: string | undefined;
  readonly setExit: (code: number) => void;
}

interface CommandModule {
  /** The verbs the module defines, in the order `--help` lists them. */
  readonly verbs: readonly string[];
  readonly load: (kit: CommandKit) => Promise<Command[]>;
}

/**
 * Every verb and the module that defines it, loaded with import() only when that verb runs (all
 * of them for the general help): a command pays for its own code only, `--version` for none.
 */
export const COMMAND_MODULES: readonly CommandModule[] = [
  { verbs: ['build'], load: async (k) => [(await import('./build-command.js')).buildCommand(k.globals, k.signal, k.setExit)] },
  { verbs: ['pull', 'push', 'login', 'logout'], load: async (k) => (await import('./registry-commands.js')).registryCommands(k.globals, k.signal, k.setExit) },
  { verbs: ['du', 'prune'], load: async (k) => (await import('./gc-commands.js')).gcCommands(k.globals, k.signal, k.setExit) },
  {
    verbs: ['images', 'tag', 'rmi', 'inspect', 'history', 'save', 'load', 'export', 'run'],
    load: async (k) => (await import('./image-commands.js')).imageCommands(k.globals, k.signal, k.setExit),
  },
  { verbs: ['config'], load: async (k) => [(await import('./config-command.js')).configCommand(k.globals, k.rawRoot, k.setExit)] },
  { verbs: ['info'], load: async (k) => [(await import('./info-command.js')).infoCommand(k.globals, k.setExit)] },
  { verbs: ['analyze'], load: async (k) => [(await import('./analyze-command.js')).analyzeCommand(k.globals, k.signal, k.setExit)] },
];

export const VERBS: ReadonlySet<string> = new Set(['build', 'help', ...COMMAND_MODULES.flatMap((m) => m.verbs)]);

/**
 * The commands `args` (argv after the global options, verb first) can reach: the verb's module,
 * or, for help (`help`, `--help`, no verb) every module, in help order.
 */
export async function commandsFor(args: readonly string[], kit: CommandKit): Promise<Command[]> {
  const verb = args[0] === 'help' && args[1] !== undefined ? args[1] : args[0];
  const own = COMMAND_MODULES.find((m) => verb !== undefined && m.verbs.includes(verb));
  const modules = own ? [own] : COMMAND_MODULES;
  return (await Promise.all(modules.map((m) => m.load(kit)))).flat();
}

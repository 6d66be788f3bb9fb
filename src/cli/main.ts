// The CLI bundle's entry (dist/bin/tsbuild-cli.cjs, loaded by launch.ts): finds the verb and
// answers `--version` before anything else runs; the rest of the CLI (commander, the config file,
// the user namespace, the verb's own module) comes with run-cli.ts, whose modules the bundle
// initialises only when imported. Start-up time is what a no-op rebuild and every short command pay first.
import { existsSync, readFileSync } from 'node:fs';
import { nearest } from './suggest.js';
import { extractGlobals } from './globals.js';
import { VERBS } from './command-table.js';
import { packageFile } from '../package-file.js';

/** Exit codes (DESIGN.md): 0 ok, 1 build failed, 2 bad usage, 130 interrupted. */
export async function main(argv: string[]): Promise<number> {
  const { globals, rest } = extractGlobals(argv);
  // Without a verb, `build` is meant: `tsbuild -f Dockerfile -t name .`
  const first = rest[0];
  const args = first !== undefined && !VERBS.has(first) && !['--help', '-h', '--version', '-V'].includes(first) ? ['build', ...rest] : rest;
  const typo = first !== undefined && args[0] === 'build' && first !== 'build' ? mistypedVerb(first) : undefined;
  if (typo) {
    process.stderr.write(`error: unknown command '${first}' (Did you mean ${typo}?)\n`);
    return 2;
  }
  // As commander would answer it, but before the config is read or any command is loaded.
  if (args[0] === '--version' || args[0] === '-V') {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  const { runCli } = await import('./run-cli.js');
  return runCli(globals, args, version());
}

/** `tsbuild imagez`: a word that is no directory but nearly a verb is a typo, not a build context. */
function mistypedVerb(word: string): string | undefined {
  if (word.startsWith('-') || existsSync(word)) return undefined;
  return nearest(word, [...VERBS].filter((v) => v !== 'help'));
}

function version(): string {
  return (JSON.parse(readFileSync(packageFile('package.json'), 'utf8')) as { version: string }).version;
}

/** Runs the command line `argv` as the process's own: sets its exit code, ends it on an interrupt. */
export async function run(argv: string[]): Promise<void> {
  process.exitCode = await main(argv);
  if (process.exitCode !== 130) return;
  const { forceExit } = await import('./run-cli.js');
  // Cleanup is done. What may still hold the event loop is a wait the abort gave up on (a TLS
  // handshake undici cannot abort): exit now, once file system calls in the thread pool are
  // done, or process.exit() would wait for them (see forceExit); one that lasts is stuck.
  const fsBusy = () => process.getActiveResourcesInfo().some((r) => r.startsWith('FSReq'));
  for (let i = 0; i < 20 && fsBusy(); i++) await new Promise((r) => setTimeout(r, 50));
  if (fsBusy()) forceExit('interrupted; a file operation cannot be cancelled');
  else process.exit(130);
}

import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { Script } from 'node:vm';

/**
 * Loads the CLI bundle (dist/bin/tsbuild-cli.cjs) with V8's code cache beside it
 * (tsbuild-cli.cjs.cache, written by scripts/train-code-cache.mjs at build time).
 *
 * Compiling the bundle's code was ~40 ms of every command, a third of a no-op rebuild. Node 20
 * has no compile cache (module.enableCompileCache came in 22) and its module loaders take no
 * cached data, so the bundle is CommonJS run through vm.Script as Node's own loader would wrap
 * it: with the cache, V8 deserialises the functions a build runs instead of parsing and
 * compiling them. V8 refuses a cache made by another V8 version, other flags or a source of
 * another length; the bundle then compiles as usual, only slower.
 *
 * The cache is code: it is only ever read from beside the bundle, where whoever can change it
 * can change the bundle too, and never written at run time.
 */
export interface CliBundle {
  main(argv: string[]): Promise<number>;
  run(argv: string[]): Promise<void>;
}

export interface LoadedBundle {
  readonly exports: CliBundle;
  /** Present when loaded through vm.Script (not under `--debug`): what the code cache is made from. */
  readonly script?: Script;
}

export function codeCachePath(bundle: string): string {
  return `${bundle}.cache`;
}

/**
 * `sourceMaps`: load through Node's CommonJS loader instead, which maps stack traces to src/
 * once source maps are enabled (it does not for vm scripts), at the cost of the code cache.
 */
export function loadBundle(bundle: string, opts: { codeCache: boolean; sourceMaps: boolean }): LoadedBundle {
  const require = createRequire(bundle);
  if (opts.sourceMaps) {
    process.setSourceMapsEnabled(true);
    return { exports: require(bundle) as CliBundle };
  }
  // latin1 is a straight byte copy into a one-byte string, a third of utf8's decode time; the
  // bundle is ASCII only (scripts/bundle.mjs checks).
  const source = readFileSync(bundle, 'latin1');
  let cachedData: Buffer | undefined;
  if (opts.codeCache) {
    try {
      cachedData = readFileSync(codeCachePath(bundle));
    } catch {
      // No cache (a build that did not train one): compile.
    }
  }
  const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, { filename: bundle, cachedData });
  const module = { exports: {} as CliBundle };
  (script.runInThisContext() as (e: object, r: NodeRequire, m: object, f: string, d: string) => void)(module.exports, require, module, bundle, dirname(bundle));
  return { exports: module.exports, script };
}

/** Writes the code cache of what `loaded` has compiled so far, atomically. */
export function writeCodeCache(loaded: LoadedBundle, bundle: string): void {
  if (!loaded.script) throw new Error('the bundle was not loaded through vm.Script');
  const dest = codeCachePath(bundle);
  const tmp = `${dest}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, loaded.script.createCachedData());
    renameSync(tmp, dest);
  } finally {
    rmSync(tmp, { force: true });
  }
}

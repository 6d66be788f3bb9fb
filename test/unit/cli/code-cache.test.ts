import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const pexec = promisify(execFile);
const LOADER = fileURLToPath(new URL('../../../src/cli/bundle-loader.js', import.meta.url));
const BUNDLE = fileURLToPath(new URL('../../../bin/tsbuild-cli.cjs', import.meta.url));

/** Loads the bundle as the `tsbuild` command does, in a node of its own; says what V8 made of the cache. */
async function loadInChild(): Promise<{ rejected: boolean | undefined; exports: string[] }> {
  const script = `const { loadBundle } = await import(${JSON.stringify(LOADER)});
const b = loadBundle(${JSON.stringify(BUNDLE)}, { codeCache: true, sourceMaps: false });
console.log(JSON.stringify({ rejected: b.script.cachedDataRejected, exports: Object.keys(b.exports).sort() }));`;
  const { stdout } = await pexec(process.execPath, ['--input-type=module', '-e', script]);
  return JSON.parse(stdout) as { rejected: boolean | undefined; exports: string[] };
}

test('npm run build trains a code cache that this node accepts for the CLI bundle', async () => {
  assert.ok((await stat(`${BUNDLE}.cache`)).size > 100_000, 'a cache holding more than the top level');
  const r = await loadInChild();
  // undefined would mean no cache was given; true that V8 refused it (other version, flags or source).
  assert.is(r.rejected, false);
  assert.equal(r.exports, ['main', 'run']);
});

test.run();

#!/usr/bin/env node
// Bundles the CLI (src/cli/main.ts and what it imports, npm dependencies included) into
// dist/bin/tsbuild.mjs with esbuild: loading ~200 ES modules one by one cost ~100 ms of every
// command, one file a few. Code splitting keeps each `import()` a separate chunk
// (dist/bin/chunks/), so a command loads only the code it runs. Source maps point at src/.
import { build } from 'esbuild';
import { rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('..', import.meta.url));
const outdir = `${repo}dist/bin`;
await rm(outdir, { recursive: true, force: true });
const { metafile } = await build({
  absWorkingDir: repo,
  entryPoints: { tsbuild: 'src/cli/main.ts' },
  outdir,
  outExtension: { '.js': '.mjs' },
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: 'linked',
  // CommonJS dependencies (commander, ssri…) call require() for Node's built-ins, which an ES
  // module has not: give every chunk one.
  banner: { js: "import { createRequire as __tsbuildCreateRequire } from 'node:module'; const require = __tsbuildCreateRequire(import.meta.url);" },
  logLevel: 'warning',
  metafile: true,
});
// A package imported with import() becomes a chunk of its own; a CommonJS one then exports only
// `default`, so `const { Agent } = await import('undici')` would get undefined in the bundle
// (and not under tsc). Such imports go through an ES module that re-exports the names.
for (const out of Object.values(metafile.outputs)) {
  if (out.entryPoint?.startsWith('node_modules/')) {
    console.error(`bundle: ${out.entryPoint} is loaded with import(): import an ES module of ours that re-exports what is used (as src/remote/undici.ts does)`);
    process.exit(1);
  }
}

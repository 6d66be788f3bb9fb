// Bundles the CLI with esbuild. Loading ~200 ES modules one by one cost ~100 ms of every command,
// one file a few:
// - dist/bin/tsbuild-cli.cjs: src/cli/main.ts and all it imports, npm dependencies included, as
//   one CommonJS file, so that src/cli/bundle-loader.ts can run it with V8's code cache (Node
//   takes none for ES modules). A module reached by import() is still only initialised when
//   imported, so a command runs only the code it needs. Source maps point at src/.
// - dist/bin/tsbuild.cjs: the `tsbuild` command (src/cli/launch.ts), which loads it. CommonJS
//   too: an ES module entry point starts node's ESM loader, ~5 ms of every command.
// Then scripts/train-code-cache.mjs writes the code cache.
import { build } from 'esbuild';
import { readFile, rm } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('..', import.meta.url));
const outdir = `${repo}dist/bin`;
await rm(outdir, { recursive: true, force: true });
const common = { absWorkingDir: repo, bundle: true, platform: 'node', target: 'node20', sourcemap: 'linked', logLevel: 'warning' };
await build({
  ...common,
  entryPoints: ['src/cli/main.ts'],
  outfile: `${outdir}/tsbuild-cli.cjs`,
  format: 'cjs',
  // No comments, no indentation: less to read at every start. Names stay, for messages and traces.
  minifyWhitespace: true,
  charset: 'ascii',
  // Licence comments go to tsbuild-cli.cjs.LEGAL.txt (one carries a non-ASCII name).
  legalComments: 'external',
  // import.meta.url (native addons, package files) is the bundle's own URL.
  define: { 'import.meta.url': '__tsbuildBundleUrl' },
  banner: { js: "const __tsbuildBundleUrl = require('node:url').pathToFileURL(__filename).href;" },
});
// The launcher's second line, run by sh when the file is run as a program (its first is
// `#!/bin/sh`): node would parse every certificate NODE_EXTRA_CA_CERTS names before anything
// else (30 ms with a system bundle), so the variable moves to TSBUILD_NODE_EXTRA_CA_CERTS and
// tsbuild trusts those certificates when it opens a TLS connection (src/remote/extra-ca-certs.ts).
// For node the line is a string and a comment.
const SH_LINE =
  '":" //; if [ -n "${NODE_EXTRA_CA_CERTS-}" ]; then TSBUILD_NODE_EXTRA_CA_CERTS=$NODE_EXTRA_CA_CERTS; export TSBUILD_NODE_EXTRA_CA_CERTS; unset NODE_EXTRA_CA_CERTS; fi; exec node "$0" "$@"';
await build({
  ...common,
  entryPoints: ['src/cli/launch.ts'],
  outfile: `${outdir}/tsbuild.cjs`,
  format: 'cjs',
  define: { 'import.meta.url': '__tsbuildLauncherUrl' },
  banner: { js: `${SH_LINE}\nconst __tsbuildLauncherUrl = require('node:url').pathToFileURL(__filename).href;` },
});
const launcher = await readFile(`${outdir}/tsbuild.cjs`, 'utf8');
if (!launcher.startsWith(`#!/bin/sh\n${SH_LINE}\n`)) {
  console.error('bundle: dist/bin/tsbuild.cjs does not start with #!/bin/sh and the sh line');
  process.exit(1);
}

// bundle-loader.ts reads the bundle as latin1: one byte is one character only if all are ASCII.
const bytes = await readFile(`${outdir}/tsbuild-cli.cjs`);
const high = bytes.findIndex((b) => b > 0x7f);
if (high >= 0) {
  console.error(`bundle: dist/bin/tsbuild-cli.cjs has a non-ASCII byte near "${bytes.subarray(Math.max(0, high - 60), high + 20).toString()}" (a regular expression literal?): write it as a \\u escape`);
  process.exit(1);
}
// src/cli/bundle-loader.ts runs the bundle as a vm.Script, which has no import(): esbuild keeps
// `import('node:…')` of a builtin as it is, and it would fail at run time.
const dynamic = /\bimport\("node:[^"]*"\)/.exec(bytes.toString('latin1'));
if (dynamic) {
  console.error(`bundle: dist/bin/tsbuild-cli.cjs has ${dynamic[0]}, which fails in the vm.Script the CLI runs in: use a static import or createRequire(import.meta.url)`);
  process.exit(1);
}
execFileSync(process.execPath, [`${repo}scripts/train-code-cache.mjs`], { stdio: 'inherit' });

#!/bin/sh
// The `tsbuild` command (dist/bin/tsbuild.cjs): answers a bare `--version` from package.json,
// else loads the CLI bundle with its code cache (bundle-loader.ts) and runs the command line.
// Run as a program, the file is first a shell script: scripts/bundle.mjs puts a line after the
// `#!/bin/sh` that moves NODE_EXTRA_CA_CERTS aside and execs node on this same file (see
// src/remote/extra-ca-certs.ts); node skips the `#!` line and reads that one as a string and a comment.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { extractGlobals } from './globals.js';
import { loadBundle } from './bundle-loader.js';
import { packageFile } from '../package-file.js';

const argv = process.argv.slice(2);
if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')) {
  process.stdout.write(`${(JSON.parse(readFileSync(packageFile('package.json'), 'utf8')) as { version: string }).version}\n`);
} else {
  const { debug } = extractGlobals(argv).globals;
  const bundle = fileURLToPath(new URL('./tsbuild-cli.cjs', import.meta.url));
  // Stack traces are printed with --debug only: then they name src/*.ts lines through the
  // bundle's source maps. Always on, maps cost ~10% of a no-op rebuild.
  void loadBundle(bundle, { codeCache: !debug, sourceMaps: debug }).exports.run(argv);
}

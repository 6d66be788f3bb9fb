#!/usr/bin/env node
// Builds native/fsx.node and zstd.node (linked to Debian's libzstd) with node-gyp against the headers of the Node that runs this script
// (<prefix>/include/node, shipped by Debian's and NodeSource's packages and by official
// tarballs), so the build works offline; node-gyp would otherwise download headers.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('..', import.meta.url));
const prefix = dirname(dirname(process.execPath));
const nodedir = process.env.npm_config_nodedir || (existsSync(join(prefix, 'include/node/node_api.h')) ? prefix : undefined);
const args = [join(repo, 'node_modules/node-gyp/bin/node-gyp.js'), 'rebuild', '--directory', join(repo, 'native'), ...(nodedir ? [`--nodedir=${nodedir}`] : [])];
const r = spawnSync(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'] });
if (r.status !== 0) {
  console.error('building the native addon failed: install make, g++, python3 and libzstd-dev (apt-get install make g++ python3 libzstd-dev)');
  process.exit(r.status ?? 1);
}

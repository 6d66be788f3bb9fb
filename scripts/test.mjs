#!/usr/bin/env node
// Runs every uvu test file under dist/test (unit first, then integration) in one uvu process,
// passes its output through, and closes with the line CI reads: `N passed, N failed, N skipped`.
// uvu prints Total/Passed/Skipped but no failed count and no such line.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('..', import.meta.url));
const args = ['node_modules/uvu/bin.js', 'dist/test', '\\.test\\.js$', ...process.argv.slice(2)];
const child = spawn(process.execPath, args, { cwd: repo, stdio: ['ignore', 'pipe', 'inherit'] });
let out = '';
child.stdout.on('data', (b) => {
  process.stdout.write(b);
  out += b.toString();
});
const code = await new Promise((res) => child.on('close', (c) => res(c ?? 1)));
const plain = out.replace(/\x1b\[[0-9;]*m/g, '');
const num = (label) => Number(plain.match(new RegExp(`${label}:\\s+(\\d+)`))?.[1] ?? 0);
const total = num('Total');
const passed = num('Passed');
const skipped = num('Skipped');
// A crash before uvu's summary counts as one failure, so the line never claims a clean run.
const failed = total - passed - skipped || (code === 0 ? 0 : 1);
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(code === 0 && failed === 0 ? 0 : 1);

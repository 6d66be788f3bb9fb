import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, utimes, writeFile, mkdir, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { archiveMaxTime } from '../../../src/orchestrator/archive-max-time.js';

const test = suite('unit/orchestrator/archive-max-time');
const signal = new AbortController().signal;
let dir = '';
test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'amt-'));
});
test.after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A tar (GNU tar) of files with their mtimes, plus a directory and a symlink newer than all of them. */
async function tarOf(files: Record<string, number>): Promise<Buffer> {
  const src = await mkdtemp(join(dir, 'src-'));
  for (const [name, t] of Object.entries(files)) {
    await writeFile(join(src, name), name);
    await utimes(join(src, name), t, t);
  }
  await mkdir(join(src, 'd'));
  await utimes(join(src, 'd'), 1900000000, 1900000000);
  await symlink('x', join(src, 'l'));
  const r = spawnSync('tar', ['-C', src, '-cf', '-', '.'], { maxBuffer: 1 << 24 });
  return r.stdout;
}

test('the newest regular file of a tar, plain or gzipped; directories and links do not count', async () => {
  const tar = await tarOf({ a: 1700000000, b: 1700000302, c: 1600000000 });
  assert.equal(await archiveMaxTime(Readable.from([tar]), signal), new Date(1700000302 * 1000));
  assert.equal(await archiveMaxTime(Readable.from([gzipSync(tar)]), signal), new Date(1700000302 * 1000));
});

test('not an archive, or an archive without files: undefined (no epoch), as BuildKit', async () => {
  assert.is(await archiveMaxTime(Readable.from([Buffer.from('FROM busybox\nRUN true\n')]), signal), undefined);
  assert.is(await archiveMaxTime(Readable.from([gzipSync(Buffer.from('plain text, gzipped'))]), signal), undefined);
  assert.is(await archiveMaxTime(Readable.from([await tarOf({})]), signal), undefined);
  assert.is(await archiveMaxTime(Readable.from([Buffer.alloc(0)]), signal), undefined);
});

test.run();

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { currentOwner, isStaleOwnedDir } from '../../../src/runtime/owner.js';

/**
 * Cleanup must never take a live process's working dir. A `.new-` dir is made, then its owner
 * file written: a concurrent cleanup can read that file while it is still empty (seen in CI: a
 * build's staging mount dir vanished before its rename). The hidden name decides first.
 */
let dir = '';
test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tsbuild-owner-'));
});
test.after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('a live process\'s .new- dir whose owner file is still empty is not stale', async () => {
  const me = (await currentOwner()).replace(' ', '-');
  const staging = join(dir, `.new-${me}-abc`);
  await mkdir(staging);
  await writeFile(join(staging, 'owner'), '');
  assert.is(await isStaleOwnedDir(staging), false);
});

test('a dead process\'s dirs are stale, by hidden name or by owner file', async () => {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  const deadPid = Number(child.stdout.toString());
  const hidden = join(dir, `.new-${deadPid}-1-xyz`);
  await mkdir(hidden);
  assert.is(await isStaleOwnedDir(hidden), true);
  const published = join(dir, 'published');
  await mkdir(published);
  await writeFile(join(published, 'owner'), `${deadPid} 1`);
  assert.is(await isStaleOwnedDir(published), true);
  await writeFile(join(published, 'owner'), await currentOwner());
  assert.is(await isStaleOwnedDir(published), false, 'a live owner file keeps a published dir');
});

test.run();

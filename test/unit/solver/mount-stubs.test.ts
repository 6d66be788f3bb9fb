import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { chmod, lstat, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { recordMountStubs } from '../../../src/solver/ops/mount-stubs.js';

/**
 * Mount stubs are removed after the RUN, when the RUN may have replaced any parent of a
 * mount target with a symlink to a host directory. Real directories stand in for the merged
 * rootfs and the upperdir; a canary directory outside both holds exactly what the clean-up
 * would delete (empty dirs and files with the recorded mode).
 */
const test = suite('mount stubs');
let work = '';
let rootfs = '';
let upper = '';
let canary = '';

test.before.each(async () => {
  work = await mkdtemp(join(tmpdir(), 'tsbuild-stubs-'));
  rootfs = join(work, 'rootfs');
  upper = join(work, 'upper');
  canary = join(work, 'canary');
  await mkdir(join(rootfs, 'p/q'), { recursive: true });
  await chmod(join(rootfs, 'p/q'), 0o750);
  await mkdir(upper);
  await mkdir(join(canary, 'q/r/s'), { recursive: true });
  await chmod(join(canary, 'q'), 0o750);
  await writeFile(join(canary, 'hosts'), '');
});
test.after.each(async () => {
  await rm(work, { recursive: true, force: true });
});

async function canaryTree(): Promise<string[]> {
  return [...(await readdir(canary, { recursive: true }))].sort();
}

test('without tampering: created stubs and copied-up parents are removed', async () => {
  const stubs = await recordMountStubs(rootfs, ['/p/q/r/s']);
  await mkdir(join(rootfs, 'p/q/r/s'), { recursive: true }); // what runc makes
  await stubs.removeCreated();
  assert.equal(await readdir(join(rootfs, 'p/q')), []);
  await mkdir(join(upper, 'p/q'), { recursive: true }); // overlay's copy-up
  await chmod(join(upper, 'p/q'), 0o750);
  await stubs.pruneCopyUps(upper, 'trusted.overlay.opaque');
  assert.equal(await readdir(upper), []);
});

test('a parent replaced by a symlink to a host dir: nothing there is removed', async () => {
  const before = await canaryTree();
  const stubs = await recordMountStubs(rootfs, ['/p/q/r/s', '/etc/hosts']);
  // The RUN: /p becomes a link to the host dir, and so does /etc.
  await rm(join(rootfs, 'p'), { recursive: true });
  await symlink(canary, join(rootfs, 'p'));
  await symlink(canary, join(rootfs, 'etc'));
  await stubs.removeCreated();
  // In the upperdir too: p is a link, q below it would match the recorded parent.
  await symlink(canary, join(upper, 'p'));
  await stubs.pruneCopyUps(upper, 'trusted.overlay.opaque');
  assert.equal(await canaryTree(), before);
  assert.ok((await lstat(join(canary, 'hosts'))).isFile());
});

test.run();

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { constants } from 'node:fs';
import { lstat, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lgetxattr, llistxattr, lsetxattr, mknod } from '../../../src/oci/native-fs.js';

const CAP = Buffer.from('0100000200200000000000000000000000000000', 'hex');

const test = suite('native-fs (fsx addon)');
let tmp = '';
test.before.each(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'tsbuild-fsx-'));
});
test.after.each(async () => {
  await rm(tmp, { recursive: true, force: true });
});

function thrown(fn: () => unknown): NodeJS.ErrnoException {
  try {
    fn();
  } catch (e) {
    return e as NodeJS.ErrnoException;
  }
  throw new Error('expected a throw');
}

test('xattrs round-trip raw bytes and agree with getfattr/setfattr', async () => {
  const f = join(tmp, 'f');
  await writeFile(f, 'x');
  assert.equal(llistxattr(f), []);
  assert.is(lgetxattr(f, 'user.none'), null);
  lsetxattr(f, 'security.capability', CAP);
  lsetxattr(f, 'user.bin', Buffer.from([0, 0xff, 0x0a]));
  lsetxattr(f, 'user.empty', Buffer.alloc(0));
  assert.equal(llistxattr(f).sort(), ['security.capability', 'user.bin', 'user.empty']);
  assert.ok(lgetxattr(f, 'security.capability')!.equals(CAP));
  assert.ok(lgetxattr(f, 'user.bin')!.equals(Buffer.from([0, 0xff, 0x0a])));
  assert.is(lgetxattr(f, 'user.empty')!.length, 0);
  const dump = execFileSync('getfattr', ['-d', '-m', '-', '-e', 'hex', f], { encoding: 'utf8' });
  assert.match(dump, 'security.capability=0x' + CAP.toString('hex'));
  execFileSync('setfattr', ['-n', 'user.big', '-v', '0x' + 'ab'.repeat(3000), f]);
  assert.is(lgetxattr(f, 'user.big')!.length, 3000);
});

test('l* calls act on the symlink, not its target', async () => {
  const f = join(tmp, 'target');
  await writeFile(f, 'x');
  await symlink('target', join(tmp, 'link'));
  lsetxattr(f, 'user.t', Buffer.from('1'));
  assert.equal(llistxattr(join(tmp, 'link')), []);
  assert.is(lgetxattr(join(tmp, 'link'), 'user.t'), null);
  // user.* xattrs are not allowed on symlinks: the kernel says EPERM
  assert.is(thrown(() => lsetxattr(join(tmp, 'link'), 'user.t', Buffer.from('1'))).code, 'EPERM');
  lsetxattr(join(tmp, 'link'), 'trusted.t', Buffer.from('2'));
  assert.ok(lgetxattr(join(tmp, 'link'), 'trusted.t')!.equals(Buffer.from('2')));
});

test('mknod makes whiteouts, fifos and devices', async () => {
  mknod(join(tmp, 'wh'), constants.S_IFCHR | 0o600, 0, 0);
  mknod(join(tmp, 'null'), constants.S_IFCHR | 0o666, 1, 3);
  mknod(join(tmp, 'blk'), constants.S_IFBLK | 0o600, 7, 300);
  mknod(join(tmp, 'fifo'), constants.S_IFIFO | 0o644, 0, 0);
  const wh = await lstat(join(tmp, 'wh'));
  assert.ok(wh.isCharacterDevice());
  assert.is(wh.rdev, 0);
  assert.is((await lstat(join(tmp, 'null'))).rdev, (1 << 8) | 3);
  const blk = await lstat(join(tmp, 'blk'));
  assert.ok(blk.isBlockDevice());
  assert.is(execFileSync('stat', ['-c', '%t:%T', join(tmp, 'blk')], { encoding: 'utf8' }).trim(), '7:12c');
  assert.ok((await lstat(join(tmp, 'fifo'))).isFIFO());
});

test('errors carry the errno name and the path', () => {
  const missing = join(tmp, 'nope');
  const e1 = thrown(() => llistxattr(missing));
  assert.is(e1.code, 'ENOENT');
  assert.match(e1.message, missing);
  const e2 = thrown(() => mknod(join(tmp, 'dup'), constants.S_IFIFO | 0o600, 0, 0) ?? mknod(join(tmp, 'dup'), constants.S_IFIFO | 0o600, 0, 0));
  assert.is(e2.code, 'EEXIST');
  assert.is(thrown(() => lgetxattr(missing, 'user.x')).code, 'ENOENT');
  assert.is(thrown(() => lsetxattr(tmp, 'bogus.x', Buffer.from('1'))).code, 'ENOTSUP');
});

test.run();

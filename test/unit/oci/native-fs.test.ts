import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { constants } from 'node:fs';
import { chmod, link, lstat, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { COPY_DEFER, COPY_DONE, copyFileData, copyFiles, inspectFiles, lgetxattr, llistxattr, lsetxattr, mknod, syncfs, ThreadPoolSha256, unmount } from '../../../src/oci/native-fs.js';

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

test('copyFiles copies plain files with owner, mode, xattrs and nanosecond times, and leaves the rest to the caller', async () => {
  const src = join(tmp, 'src');
  const dst = join(tmp, 'dst');
  await mkdir(src);
  await mkdir(dst);
  const big = Buffer.alloc(3 << 20, 7);
  await writeFile(join(src, 'big'), big);
  await writeFile(join(src, 'suid'), '#!/bin/sh\n');
  await chmod(join(src, 'suid'), 0o4751);
  lsetxattr(join(src, 'suid'), 'security.capability', CAP);
  lsetxattr(join(src, 'suid'), 'user.keep', Buffer.from('v'));
  lsetxattr(join(src, 'suid'), 'trusted.overlay.opaque', Buffer.from('y'));
  execFileSync('touch', ['-h', '-d', '@1500000000.987654321', join(src, 'suid')]);
  await writeFile(join(src, 'empty'), '');
  await symlink('big', join(src, 'link'));
  await writeFile(join(src, 'hard'), 'h');
  await link(join(src, 'hard'), join(src, 'hard2'));
  mknod(join(src, 'fifo'), constants.S_IFIFO | 0o644, 0, 0);
  await writeFile(join(src, 'exists'), 'new');
  await writeFile(join(dst, 'exists'), 'old');
  await mkdir(join(src, 'dir'));
  const names = ['big', 'suid', 'empty', 'link', 'hard', 'fifo', 'exists', 'dir'];
  const status = await copyFiles(src, dst, names, { uid: 1234, gid: 5678 });
  assert.equal([...status], [COPY_DONE, COPY_DONE, COPY_DONE, COPY_DEFER, COPY_DEFER, COPY_DEFER, COPY_DEFER, COPY_DEFER]);
  assert.ok((await readFile(join(dst, 'big'))).equals(big));
  assert.is(await readFile(join(dst, 'exists'), 'utf8'), 'old', 'an existing destination is left alone');
  for (const n of ['link', 'hard', 'fifo', 'dir']) assert.is(await lstat(join(dst, n)).catch(() => null), null, `${n} deferred, not made`);
  const s = await stat(join(dst, 'suid'), { bigint: true });
  assert.is(s.mode & 0o7777n, 0o4751n, 'setuid survives the chown');
  assert.is([s.uid, s.gid].join(':'), '1234:5678');
  assert.is(s.mtimeNs, 1_500_000_000_987_654_321n);
  assert.equal(llistxattr(join(dst, 'suid')).sort(), ['security.capability', 'user.keep']);
  assert.ok(lgetxattr(join(dst, 'suid'), 'security.capability')!.equals(CAP));
  assert.is((await stat(join(dst, 'empty'))).size, 0);
  // -1: the source's owner is kept.
  await mkdir(join(tmp, 'dst2'));
  await copyFiles(src, join(tmp, 'dst2'), ['big'], undefined);
  const [a, b] = [await stat(join(src, 'big')), await stat(join(tmp, 'dst2/big'))];
  assert.is(`${b.uid}:${b.gid}`, `${a.uid}:${a.gid}`);
});

test('copyFiles refuses names that are not one path component and directories that are symlinks', async () => {
  const src = join(tmp, 'src');
  const dst = join(tmp, 'dst');
  await mkdir(join(src, 'sub'), { recursive: true });
  await mkdir(dst);
  await writeFile(join(src, 'sub/f'), 'x');
  for (const bad of ['sub/f', '..', '.', '']) {
    const e = (await copyFiles(src, dst, [bad], undefined).catch((err: unknown) => err)) as NodeJS.ErrnoException;
    assert.is(e.code, 'EINVAL', JSON.stringify(bad));
  }
  await symlink('sub', join(tmp, 'via-link'));
  const e = (await copyFiles(join(tmp, 'via-link'), dst, ['f'], undefined).catch((err: unknown) => err)) as NodeJS.ErrnoException;
  assert.ok(e.code === 'ELOOP' || e.code === 'ENOTDIR', `a symlinked source directory is not followed: ${e.code}`);
  await symlink(dst, join(tmp, 'dst-link'));
  const e2 = (await copyFiles(join(src, 'sub'), join(tmp, 'dst-link'), ['f'], undefined).catch((err: unknown) => err)) as NodeJS.ErrnoException;
  assert.ok(e2.code === 'ELOOP' || e2.code === 'ENOTDIR', `nor a symlinked destination: ${e2.code}`);
  assert.match(e2.message, /dst-link/);
});

test('copyFileData copies the data into a new 0600 file, never over an existing one, never through a symlink or from a non-file', async () => {
  const data = randomBytes(3 * 1024 * 1024 + 17);
  await writeFile(join(tmp, 'src'), data, { mode: 0o755 });
  await copyFileData(join(tmp, 'src'), join(tmp, 'dst'));
  assert.ok((await readFile(join(tmp, 'dst'))).equals(data));
  assert.is((await stat(join(tmp, 'dst'))).mode & 0o7777, 0o600, 'the caller sets the mode');
  await writeFile(join(tmp, 'empty'), '');
  await copyFileData(join(tmp, 'empty'), join(tmp, 'empty-copy'));
  assert.is((await stat(join(tmp, 'empty-copy'))).size, 0);

  const exists = await copyFileData(join(tmp, 'src'), join(tmp, 'empty')).catch((e: NodeJS.ErrnoException) => e);
  assert.is((exists as NodeJS.ErrnoException).code, 'EEXIST');
  assert.is((await stat(join(tmp, 'empty'))).size, 0, 'an existing destination is left as it was');
  await symlink(join(tmp, 'src'), join(tmp, 'link'));
  const viaLink = await copyFileData(join(tmp, 'link'), join(tmp, 'x')).catch((e: NodeJS.ErrnoException) => e);
  assert.is((viaLink as NodeJS.ErrnoException).code, 'ELOOP');
  await symlink(join(tmp, 'elsewhere'), join(tmp, 'dst-link'));
  const toLink = await copyFileData(join(tmp, 'src'), join(tmp, 'dst-link')).catch((e: NodeJS.ErrnoException) => e);
  assert.is((toLink as NodeJS.ErrnoException).code, 'EEXIST');
  assert.not.ok(await lstat(join(tmp, 'elsewhere')).catch(() => undefined), 'nothing made through the symlink');
  const dir = await copyFileData(tmp, join(tmp, 'y')).catch((e: NodeJS.ErrnoException) => e);
  assert.is((dir as NodeJS.ErrnoException).code, 'EINVAL');
  assert.match((dir as Error).message, tmp);
});

test('inspectFiles reports lstat fields, xattr presence, link targets and small contents within the budget', async () => {
  const d = join(tmp, 'd');
  await mkdir(join(d, 'sub'), { recursive: true });
  await writeFile(join(d, 'a'), 'aaaa');
  await writeFile(join(d, 'b'), 'bbbbbb');
  await writeFile(join(d, 'big'), Buffer.alloc(100, 1));
  await writeFile(join(d, 'empty'), '');
  await symlink('../somewhere/else', join(d, 'ln'));
  mknod(join(d, 'wh'), constants.S_IFCHR, 0, 0);
  mknod(join(d, 'fifo'), constants.S_IFIFO | 0o640, 0, 0);
  lsetxattr(join(d, 'sub'), 'user.x', Buffer.from('1'));
  await link(join(d, 'a'), join(d, 'a2'));
  execFileSync('touch', ['-h', '-d', '@1234567890.75', join(d, 'a')]);
  // readMax 50 leaves `big` out; budget 8 takes `a` (4) but not `b` (6 more).
  const names = ['a', 'b', 'big', 'empty', 'ln', 'wh', 'fifo', 'sub', 'a2'];
  const r = await inspectFiles(d, names, 50, 8);
  const byName = new Map(names.map((n, i) => [n, r[i]!]));
  const a = byName.get('a')!;
  const st = await lstat(join(d, 'a'), { bigint: true });
  assert.is(a.mode, Number(st.mode));
  assert.is(a.size, 4);
  assert.is(a.mtime, 1234567890);
  assert.is(a.nlink, 2);
  assert.is(a.ino, st.ino);
  assert.is(a.dev, st.dev);
  assert.is(a.data?.toString(), 'aaaa');
  assert.is(byName.get('a2')!.ino, st.ino);
  assert.is(byName.get('b')!.data, undefined, 'over the budget: left to stream');
  assert.is(byName.get('big')!.data, undefined, 'over readMax: left to stream');
  assert.is(byName.get('empty')!.data, undefined);
  assert.is(byName.get('ln')!.data?.toString(), '../somewhere/else');
  assert.is(byName.get('wh')!.mode & constants.S_IFMT, constants.S_IFCHR);
  assert.is(byName.get('wh')!.rdev, 0n);
  assert.is(byName.get('fifo')!.mode & 0o7777, 0o640 & ~process.umask());
  assert.ok(byName.get('sub')!.hasXattrs);
  assert.not.ok(byName.get('a')!.hasXattrs);
  const e = (await inspectFiles(d, ['missing'], 50, 8).catch((err: unknown) => err)) as NodeJS.ErrnoException;
  assert.is(e.code, 'ENOENT');
  assert.match(e.message, /missing/);
  const e2 = (await inspectFiles(d, ['sub/x'], 50, 8).catch((err: unknown) => err)) as NodeJS.ErrnoException;
  assert.is(e2.code, 'EINVAL');
});

test('ThreadPoolSha256 equals crypto sha256 over pooled, sliced, empty and large chunks, updated without awaiting', async () => {
  const big = randomBytes(3 << 20);
  const chunks = [Buffer.from('abc'), Buffer.alloc(0), big.subarray(1, 1 << 20), new Uint8Array(big.buffer, big.byteOffset + (1 << 20), 12345), big.subarray(2 << 20)];
  const h = new ThreadPoolSha256();
  // Queued at once: the hasher applies them in call order.
  await Promise.all(chunks.map((c) => h.update(c)));
  const want = createHash('sha256');
  for (const c of chunks) want.update(c);
  assert.is(await h.digestHex(), want.digest('hex'));
  assert.is(await new ThreadPoolSha256().digestHex(), createHash('sha256').digest('hex'));
});

test('unmount: a directory that is not a mount point is EINVAL, a missing one ENOENT; syncfs flushes a directory\'s filesystem', async () => {
  assert.is(((await unmount(tmp).catch((e: unknown) => e)) as NodeJS.ErrnoException).code, 'EINVAL');
  assert.is(((await unmount(join(tmp, 'missing'), true).catch((e: unknown) => e)) as NodeJS.ErrnoException).code, 'ENOENT');
  await syncfs(tmp);
  assert.is(((await syncfs(join(tmp, 'missing')).catch((e: unknown) => e)) as NodeJS.ErrnoException).code, 'ENOENT');
});

test.run();

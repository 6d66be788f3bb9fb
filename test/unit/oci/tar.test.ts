import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdtemp, readFile, readlink, rm, writeFile, mkdir, symlink, link, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { TarWriter } from '../../../src/oci/tar/tar-writer.js';
import { readTar } from '../../../src/oci/tar/tar-reader.js';
import { lsetxattr, mknod } from '../../../src/oci/native-fs.js';
import { constants } from 'node:fs';
import { chown, chmod, utimes } from 'node:fs/promises';
import type { TarEntry } from '../../../src/oci/tar/tar-entry.js';

const CAP = Buffer.from('0100000200200000000000000000000000000000', 'hex'); // cap_net_bind_service=ep
const LONG100 = 'd'.repeat(60) + '/' + 'f'.repeat(70); // 131 bytes, splits into prefix/name
const LONG300 = Array.from({ length: 6 }, (_, i) => `${i}`.repeat(50)).join('/'); // 305 bytes: pax path
const UNICODE = 'dir/héllo wörld ✓ 日本.txt';

function base(p: Partial<TarEntry> & Pick<TarEntry, 'path' | 'type'>): TarEntry {
  return { mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 1_700_000_000, ...p };
}

/** Writes entries into a tar file through TarWriter, draining the stream concurrently. */
async function writeArchive(file: string, items: Array<[TarEntry, (Buffer | Readable)?]>): Promise<void> {
  const w = new TarWriter();
  const done = pipeline(w.stream, createWriteStream(file));
  for (const [e, body] of items) await w.add(e, body);
  await w.finish();
  await done;
}

async function rejects(p: Promise<unknown>, re: RegExp): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert.match(String((e as Error).message), re);
    return;
  }
  assert.unreachable('expected a rejection');
}

function getfattr(path: string, name: string): string {
  const out = execFileSync('getfattr', ['-h', '-e', 'hex', '-n', name, path], { encoding: 'utf8' });
  return /=(0x[0-9a-f]*)/.exec(out)?.[1] ?? '';
}

const writer = suite('TarWriter (checked with GNU tar)');
let tmp = '';
writer.before.each(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'tsbuild-tar-'));
});
writer.after.each(async () => {
  await rm(tmp, { recursive: true, force: true });
});

writer('GNU tar lists and extracts every entry kind identically', async () => {
  const file = join(tmp, 'a.tar');
  const xattrs = new Map([
    ['security.capability', CAP],
    ['user.bin', Buffer.from([0, 1, 2, 0xff, 0x0a, 0x3d, 0x20])],
  ]);
  await writeArchive(file, [
    [base({ path: 'dir', type: 'dir', mode: 0o755 })],
    [base({ path: 'dir/file', type: 'file', size: 5, mode: 0o4755, uid: 1000, gid: 1000 }), Buffer.from('hello')],
    [base({ path: 'dir/empty', type: 'file', mode: 0o600 })],
    [base({ path: 'dir/cap', type: 'file', size: 3, mode: 0o755, xattrs }), Readable.from([Buffer.from('a'), Buffer.from('bc')])],
    [base({ path: 'dir/hard', type: 'hardlink', linkname: 'dir/file' })],
    [base({ path: 'dir/sym', type: 'symlink', linkname: '../' + 'x'.repeat(150), mode: 0o777 })],
    [base({ path: 'dir/fifo', type: 'fifo', mode: 0o620 })],
    [base({ path: 'dir/null', type: 'char', mode: 0o666, devmajor: 1, devminor: 3 })],
    [base({ path: 'sticky', type: 'dir', mode: 0o1777 })],
    [base({ path: 'bigids', type: 'file', uid: 3_000_000, gid: 4_000_000, mtime: 1_700_000_000.25 })],
    [base({ path: LONG100.split('/')[0]!, type: 'dir', mode: 0o755 })],
    [base({ path: LONG100, type: 'file', size: 1 }), Buffer.from('L')],
    ...LONG300.split('/').slice(0, -1).map((_, i, parts): [TarEntry] => [base({ path: parts.slice(0, i + 1).join('/'), type: 'dir', mode: 0o755 })]),
    [base({ path: LONG300, type: 'file', size: 2 }), Buffer.from('LL')],
    [base({ path: UNICODE, type: 'file', size: 3 }), Buffer.from('uni')],
  ]);

  const listing = execFileSync('tar', ['--xattrs', "--xattrs-include=*", '--numeric-owner', '-tvf', file], { encoding: 'utf8' });
  assert.ok(listing.includes('dir/sym -> ../' + 'x'.repeat(150)), listing);
  assert.ok(listing.includes('dir/hard link to dir/file'), listing);
  assert.ok(listing.includes('3000000/4000000'), listing);
  assert.ok(listing.includes(LONG300), 'long path listed');
  assert.ok(listing.includes(UNICODE), 'unicode path listed');
  assert.match(listing, /^drwxr-xr-x +0\/0 +0 \S+ \S+ dir\/$/m, listing);

  const out = join(tmp, 'x');
  await mkdir(out);
  execFileSync('tar', ['--xattrs', "--xattrs-include=*", '--numeric-owner', '-p', '-xf', file, '-C', out]);

  const st = await lstat(join(out, 'dir/file'));
  assert.is(st.mode & 0o7777, 0o4755, 'setuid kept');
  assert.is(st.uid, 1000);
  assert.is(st.nlink, 2, 'hardlink extracted as a link');
  assert.is((await lstat(join(out, 'dir/hard'))).ino, st.ino);
  assert.is(await readFile(join(out, 'dir/file'), 'utf8'), 'hello');
  assert.is((await lstat(join(out, 'dir/empty'))).size, 0);
  assert.is(await readFile(join(out, 'dir/cap'), 'utf8'), 'abc');
  assert.is(getfattr(join(out, 'dir/cap'), 'security.capability'), '0x' + CAP.toString('hex'));
  assert.is(getfattr(join(out, 'dir/cap'), 'user.bin'), '0x000102ff0a3d20');
  assert.is(await readlink(join(out, 'dir/sym')), '../' + 'x'.repeat(150));
  assert.ok((await lstat(join(out, 'dir/fifo'))).isFIFO());
  const nul = await lstat(join(out, 'dir/null'));
  assert.ok(nul.isCharacterDevice());
  assert.is(nul.rdev, (1 << 8) | 3);
  assert.is((await lstat(join(out, 'sticky'))).mode & 0o7777, 0o1777);
  const big = await lstat(join(out, 'bigids'));
  assert.is(big.uid, 3_000_000);
  assert.is(big.gid, 4_000_000);
  assert.is(big.mtimeMs, 1_700_000_000_250);
  assert.is(await readFile(join(out, LONG100), 'utf8'), 'L');
  assert.is(await readFile(join(out, LONG300), 'utf8'), 'LL');
  assert.is(await readFile(join(out, UNICODE), 'utf8'), 'uni');
});

writer('output is deterministic and plain ustar when nothing needs pax', async () => {
  const items = (): Array<[TarEntry, Buffer?]> => [
    [base({ path: 'a', type: 'dir', mode: 0o755 })],
    [base({ path: 'a/b', type: 'file', size: 2, xattrs: new Map([['user.z', Buffer.from('1')], ['user.a', Buffer.from('2')]]) }), Buffer.from('hi')],
  ];
  await writeArchive(join(tmp, '1.tar'), items());
  const rev = items();
  rev[1]![0].xattrs = new Map([...rev[1]![0].xattrs!].reverse());
  await writeArchive(join(tmp, '2.tar'), rev);
  const one = await readFile(join(tmp, '1.tar'));
  assert.ok(one.equals(await readFile(join(tmp, '2.tar'))), 'same bytes');
  assert.is(one.length % 512, 0);
  assert.is(one.subarray(257, 263).toString('latin1'), 'ustar\0');
  assert.is(one[156], 0x35, 'first header is the dir itself, no pax header');
  assert.is(one.subarray(0, 2).toString(), 'a/');
  assert.ok(one.subarray(-1024).equals(Buffer.alloc(1024)), 'two zero blocks at the end');
});

writer('a body of the wrong length is an error', async () => {
  const w = new TarWriter();
  w.stream.resume();
  await rejects(w.add(base({ path: 'f', type: 'file', size: 4 }), Buffer.from('abc')), /3 bytes, header declared 4/);
  const w2 = new TarWriter();
  w2.stream.resume();
  await rejects(w2.add(base({ path: 'f', type: 'file', size: 1 }), Readable.from([Buffer.from('ab')])), /longer than the declared 1/);
});

writer('a 50 MB file streams through with backpressure and bounded memory', async () => {
  const src = join(tmp, 'sparse');
  await writeFile(src, '');
  const size = 50 * 1024 * 1024;
  await truncate(src, size);
  const file = join(tmp, 'big.tar');
  const before = process.memoryUsage().rss;
  await writeArchive(file, [[base({ path: 'big', type: 'file', size }), createReadStream(src)]]);
  const grown = process.memoryUsage().rss - before;
  assert.ok(grown < 40 * 1024 * 1024, `rss grew by ${grown}`);
  assert.is((await lstat(file)).size, 512 + size + 1024);
  const listing = execFileSync('tar', ['-tvf', file], { encoding: 'utf8' });
  assert.match(listing, /52428800 .* big/);
});


/** Reads a whole archive into entries + body bytes (fine for small test archives). */
async function readAll(source: AsyncIterable<Buffer> | Readable): Promise<Map<string, { entry: TarEntry; data: Buffer }>> {
  const out = new Map<string, { entry: TarEntry; data: Buffer }>();
  for await (const { entry, body } of readTar(source)) {
    const parts: Buffer[] = [];
    for await (const c of body) parts.push(Buffer.from(c));
    out.set(entry.path, { entry, data: Buffer.concat(parts) });
  }
  return out;
}

const reader = suite('readTar');
reader.before.each(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'tsbuild-tar-'));
});
reader.after.each(async () => {
  await rm(tmp, { recursive: true, force: true });
});

reader('reads back what TarWriter wrote, field for field', async () => {
  const entries: Array<[TarEntry, Buffer?]> = [
    [base({ path: 'dir', type: 'dir', mode: 0o2755, uname: 'root', gname: 'root' })],
    [base({ path: 'dir/f', type: 'file', size: 3, uid: 3_000_000, gid: 5, mtime: 12.5, xattrs: new Map([['security.capability', CAP], ['user.e', Buffer.alloc(0)]]) }), Buffer.from('abc')],
    [base({ path: 'dir/h', type: 'hardlink', linkname: 'dir/f' })],
    [base({ path: 'dir/s', type: 'symlink', linkname: 'y'.repeat(200) })],
    [base({ path: 'dir/b', type: 'block', devmajor: 8, devminor: 1 })],
    [base({ path: LONG300, type: 'file', size: 1, uname: 'u'.repeat(40) }), Buffer.from('z')],
    [base({ path: UNICODE, type: 'fifo' })],
  ];
  const file = join(tmp, 'rt.tar');
  await writeArchive(file, entries);
  const got = await readAll(createReadStream(file, { highWaterMark: 100 }));
  assert.equal([...got.keys()], entries.map(([e]) => e.path));
  for (const [e, body] of entries) {
    assert.equal(got.get(e.path)!.entry, e, e.path);
    assert.ok(got.get(e.path)!.data.equals(body ?? Buffer.alloc(0)));
  }
});

reader('reads GNU tar --format=pax --xattrs archives of a real tree', async () => {
  const d = join(tmp, 'tree');
  await mkdir(join(d, 'sub'), { recursive: true });
  await writeFile(join(d, 'sub/file'), 'content\n');
  await chown(join(d, 'sub/file'), 3_000_000, 42); // before chmod: chown clears setuid
  await chmod(join(d, 'sub/file'), 0o4711);
  await link(join(d, 'sub/file'), join(d, 'sub/hard'));
  await symlink('sub/file', join(d, 'sym'));
  await writeFile(join(d, 'cap'), '');
  execFileSync('setfattr', ['-n', 'security.capability', '-v', '0x' + CAP.toString('hex'), join(d, 'cap')]);
  lsetxattr(join(d, 'cap'), 'user.note', Buffer.from('a=b\nc'));
  mknod(join(d, 'wh'), constants.S_IFCHR, 0, 0);
  mknod(join(d, 'fifo'), constants.S_IFIFO | 0o640, 0, 0);
  const longDir = join(d, 'l'.repeat(120));
  await mkdir(longDir);
  await writeFile(join(longDir, 'n'.repeat(150)), 'long');
  await utimes(join(d, 'sub/file'), 1_600_000_000, 1_600_000_000.5);

  const file = join(tmp, 'gnu-pax.tar');
  execFileSync('tar', ['--format=pax', '--xattrs', '--xattrs-include=*', '--sort=name', '-C', d, '-cf', file, '.']);
  const got = await readAll(createReadStream(file));
  const f = got.get('./sub/file')!.entry;
  assert.is(f.type, 'file');
  assert.is(f.mode, 0o4711);
  assert.is(f.uid, 3_000_000);
  assert.is(f.gid, 42);
  assert.is(f.mtime, 1_600_000_000.5);
  assert.is(got.get('./sub/file')!.data.toString(), 'content\n');
  assert.is(got.get('./sub/hard')!.entry.type, 'hardlink');
  assert.is(got.get('./sub/hard')!.entry.linkname, './sub/file');
  assert.is(got.get('./sym')!.entry.linkname, 'sub/file');
  const cap = got.get('./cap')!.entry;
  assert.ok(cap.xattrs!.get('security.capability')!.equals(CAP));
  assert.is(cap.xattrs!.get('user.note')!.toString(), 'a=b\nc');
  assert.equal([got.get('./wh')!.entry.type, got.get('./wh')!.entry.devmajor, got.get('./wh')!.entry.devminor], ['char', 0, 0]);
  assert.is(got.get('./fifo')!.entry.type, 'fifo');
  assert.is(got.get('./fifo')!.entry.mode, 0o640);
  const longPath = `./${'l'.repeat(120)}/${'n'.repeat(150)}`;
  assert.is(got.get(longPath)!.data.toString(), 'long');
  assert.is(got.get('.')!.entry.type, 'dir');
});

reader('reads GNU-format archives: longname/longlink and base-256 ids', async () => {
  const d = join(tmp, 'tree');
  await mkdir(d);
  const name = 'q'.repeat(180);
  await writeFile(join(d, name), 'x');
  await chown(join(d, name), 9_000_000, 0);
  await symlink('t'.repeat(150), join(d, 'lnk'));
  const file = join(tmp, 'gnu.tar');
  execFileSync('tar', ['--format=gnu', '--sort=name', '-C', d, '-cf', file, name, 'lnk']);
  const raw = await readFile(file);
  assert.is(raw[156], 'L'.charCodeAt(0), 'GNU longname header present');
  const got = await readAll(createReadStream(file));
  assert.equal([...got.keys()], [name, 'lnk']);
  assert.is(got.get(name)!.entry.uid, 9_000_000);
  assert.is(got.get('lnk')!.entry.linkname, 't'.repeat(150));
});

reader('skips unread and half-read bodies', async () => {
  const file = join(tmp, 's.tar');
  const big = Buffer.alloc(700_000, 7);
  await writeArchive(file, [
    [base({ path: 'a', type: 'file', size: big.length }), big],
    [base({ path: 'b', type: 'file', size: big.length }), big],
    [base({ path: 'c', type: 'file', size: 2 }), Buffer.from('ok')],
  ]);
  const seen: string[] = [];
  for await (const { entry, body } of readTar(createReadStream(file))) {
    seen.push(entry.path);
    if (entry.path === 'b') {
      for await (const chunk of body) {
        assert.ok(chunk.length <= 256 * 1024);
        break;
      }
    }
    if (entry.path === 'c') {
      const parts: Buffer[] = [];
      for await (const chunk of body) parts.push(chunk);
      assert.is(Buffer.concat(parts).toString(), 'ok');
    }
  }
  assert.equal(seen, ['a', 'b', 'c']);
});

reader('rejects corrupt and truncated archives with a clear error', async () => {
  const file = join(tmp, 'c.tar');
  await writeArchive(file, [[base({ path: 'a', type: 'file', size: 600 }), Buffer.alloc(600, 1)]]);
  const good = await readFile(file);
  const corrupt = Buffer.from(good);
  corrupt[10] = 0x41;
  await rejects(readAll(Readable.from([corrupt])), /checksum mismatch/);
  await rejects(readAll(Readable.from([good.subarray(0, 800)])), /unexpected end of archive/);
  await rejects(readAll(Readable.from([Buffer.alloc(512, 0x61)])), /checksum mismatch/);
});

reader('stops when aborted', async () => {
  const file = join(tmp, 'a.tar');
  await writeArchive(file, [[base({ path: 'a', type: 'file' })], [base({ path: 'b', type: 'file' })]]);
  const ac = new AbortController();
  const seen: string[] = [];
  await rejects(
    (async () => {
      for await (const { entry } of readTar(createReadStream(file), ac.signal)) {
        seen.push(entry.path);
        ac.abort();
      }
    })(),
    /abort/i,
  );
  assert.equal(seen, ['a']);
});

writer.run();
reader.run();

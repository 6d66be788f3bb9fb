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

writer.run();

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { compressionOf, decompressStream, isArchive, isArchiveFile, isTarHeader } from '../../../src/oci/decompress.js';
import { readTar } from '../../../src/oci/tar/tar-reader.js';

const test = suite('decompress');
let tmp = '';
let tarFile = '';
test.before.each(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'tsbuild-dec-'));
  await mkdir(join(tmp, 'src'));
  await writeFile(join(tmp, 'src/hello.txt'), 'hello '.repeat(50_000));
  tarFile = join(tmp, 'a.tar');
  execFileSync('tar', ['-C', join(tmp, 'src'), '-cf', tarFile, 'hello.txt']);
  for (const [tool, ext] of [['gzip', 'gz'], ['bzip2', 'bz2'], ['xz', 'xz']] as const) {
    execFileSync('sh', ['-c', `${tool} -c "$1" > "$1.${ext}"`, 'sh', tarFile]);
  }
});
test.after.each(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function collect(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

test('gzip, bzip2, xz and plain tar all decompress to the same tar', async () => {
  const plain = await readFile(tarFile);
  for (const ext of ['', '.gz', '.bz2', '.xz']) {
    const out = await collect(await decompressStream(createReadStream(tarFile + ext, { highWaterMark: 3 })));
    assert.ok(out.equals(plain), ext || 'plain');
    const names: string[] = [];
    for await (const { entry } of readTar(await decompressStream(createReadStream(tarFile + ext)))) names.push(entry.path);
    assert.equal(names, ['hello.txt'], ext);
  }
});

test('sniffing', async () => {
  assert.is(compressionOf(await readFile(tarFile + '.gz')), 'gzip');
  assert.is(compressionOf(await readFile(tarFile + '.bz2')), 'bzip2');
  assert.is(compressionOf(await readFile(tarFile + '.xz')), 'xz');
  assert.is(compressionOf(await readFile(tarFile)), 'none');
  const head = (await readFile(tarFile)).subarray(0, 512);
  assert.ok(isTarHeader(head));
  assert.ok(isArchive(head));
  const broken = Buffer.from(head);
  broken[0] = broken[0]! ^ 1;
  assert.not.ok(isTarHeader(broken), 'checksum checked');
  assert.not.ok(isArchive(Buffer.from('just text\n'.repeat(60))));
});

test('isArchiveFile looks through compression', async () => {
  for (const ext of ['', '.gz', '.bz2', '.xz']) assert.ok(await isArchiveFile(tarFile + ext), ext);
  await writeFile(join(tmp, 'text'), 'x'.repeat(2000));
  execFileSync('sh', ['-c', 'gzip -c "$1" > "$1.gz"; xz -c "$1" > "$1.xz"', 'sh', join(tmp, 'text')]);
  assert.not.ok(await isArchiveFile(join(tmp, 'text')));
  assert.not.ok(await isArchiveFile(join(tmp, 'text.gz')), 'gzip of a non-tar');
  assert.not.ok(await isArchiveFile(join(tmp, 'text.xz')), 'xz of a non-tar');
  await writeFile(join(tmp, 'tiny'), 'a');
  assert.not.ok(await isArchiveFile(join(tmp, 'tiny')));
});

test('corrupt compressed input fails with the tool error', async () => {
  const xz = await readFile(tarFile + '.xz');
  const bad = Buffer.concat([xz.subarray(0, 40), Buffer.alloc(100, 7)]);
  let err: unknown;
  try {
    await collect(await decompressStream(Readable.from([bad])));
  } catch (e) {
    err = e;
  }
  assert.match(String(err), /xz -dc failed/);
});

test.run();

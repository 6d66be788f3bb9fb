import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Transform } from 'node:stream';
import { ZstdCompress, ZstdDecompress, zstdVersion } from '../../../src/oci/layer/zstd.js';
import { decompressStream } from '../../../src/oci/decompress.js';

const test = suite('zstd (libzstd binding)');

/** ~24 MiB of build-output-like data (copies of the node binary with a counter), several zstd jobs long. */
let input: Buffer;
test.before(async () => {
  const exe = await readFile(process.execPath);
  const parts: Buffer[] = [];
  for (let n = 0, i = 0; n < 24 << 20; i++) {
    const part = Buffer.concat([Buffer.from(`part ${i}\n`), exe.subarray((i * 7919) % (exe.length >> 1), ((i * 7919) % (exe.length >> 1)) + (1 << 20))]);
    parts.push(part);
    n += part.length;
  }
  input = Buffer.concat(parts);
});

async function through(t: Transform, data: Buffer, chunk: number): Promise<Buffer> {
  const out: Buffer[] = [];
  const src = Readable.from((function* () {
    for (let i = 0; i < data.length; i += chunk) yield data.subarray(i, i + chunk);
  })());
  await pipeline(src, t, async (s: AsyncIterable<Buffer>) => {
    for await (const c of s) out.push(c);
  });
  return Buffer.concat(out);
}

const hash = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test('the same bytes whatever the worker count and however the input is cut', async () => {
  const reference = await through(new ZstdCompress({ level: 3, workers: 1 }), input, 1 << 20);
  for (const [workers, chunk] of [[2, 1 << 20], [4, 1 << 20], [2, 65536], [4, 3_000_001], [1, 12345]] as const) {
    const out = await through(new ZstdCompress({ level: 3, workers }), input, chunk);
    assert.is(hash(out), hash(reference), `workers=${workers} chunk=${chunk}`);
  }
  assert.ok(reference.length < input.length / 1.5, `compresses: ${reference.length} of ${input.length}`);
});

test('zstd(1) reads what we write, and we read what it writes', async () => {
  const ours = await through(new ZstdCompress({ level: 3 }), input, 1 << 20);
  execFileSync('zstd', ['-t', '-q'], { input: ours });
  assert.is(hash(execFileSync('zstd', ['-dc'], { input: ours, maxBuffer: 64 << 20 })), hash(input));
  const theirs = execFileSync('zstd', ['-c', '-q', '-T2', '-19', '--long=27'], { input: input.subarray(0, 4 << 20), maxBuffer: 64 << 20 });
  assert.is(hash(await through(new ZstdDecompress(), theirs, 4096)), hash(input.subarray(0, 4 << 20)));
  // Through the sniffing decompressor layers and ADD archives use.
  const sniffed = await decompressStream(Readable.from([ours.subarray(0, 3), ours.subarray(3)]));
  const out: Buffer[] = [];
  for await (const c of sniffed) out.push(c as Buffer);
  assert.is(hash(Buffer.concat(out)), hash(input));
});

test('levels differ; a highly compressible input expands in bounded steps', async () => {
  const zeros = Buffer.alloc(64 << 20);
  const z = await through(new ZstdCompress({ level: 19 }), zeros, 1 << 20);
  assert.ok(z.length < 64 * 1024, `${z.length}`);
  const back = await through(new ZstdDecompress(), z, z.length);
  assert.is(back.length, zeros.length);
  const l1 = await through(new ZstdCompress({ level: 1 }), input, 1 << 20);
  const l9 = await through(new ZstdCompress({ level: 9 }), input, 1 << 20);
  assert.is.not(hash(l1), hash(l9));
});

test('truncated and corrupt input fail instead of giving short output', async () => {
  const ours = await through(new ZstdCompress({ level: 3 }), input.subarray(0, 1 << 20), 65536);
  const cut = await through(new ZstdDecompress(), ours.subarray(0, ours.length - 10), 4096).then(() => undefined, (e: Error) => e);
  assert.ok(cut, 'a truncated frame is an error');
  const bad = Buffer.from(ours);
  bad[bad.length >> 1]! ^= 0xff;
  const corrupt = await through(new ZstdDecompress(), bad, 4096).then(() => undefined, (e: Error) => e);
  assert.ok(corrupt, 'a corrupt frame is an error (content checksum)');
  assert.match(zstdVersion(), /^1\.\d+\.\d+$/);
});

test.run();

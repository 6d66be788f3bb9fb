import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gunzipSync, gzipSync } from 'node:zlib';
import { GZIP_BLOCK, ParallelGzip } from '../../../src/oci/layer/parallel-gzip.js';

const test = suite('ParallelGzip');

async function compress(data: Buffer, parallelism: number, chunk = 64 * 1024): Promise<Buffer> {
  const out: Buffer[] = [];
  const pieces = function* () {
    for (let i = 0; i < data.length; i += chunk) yield data.subarray(i, i + chunk);
  };
  await pipeline(Readable.from(pieces()), new ParallelGzip({ parallelism }), async (src: AsyncIterable<Buffer>) => {
    for await (const c of src) out.push(c);
  });
  return Buffer.concat(out);
}

/** Text-like data (compressible, with repeats across block boundaries) plus a random stretch. */
function sample(n: number): Buffer {
  const words = Buffer.from('layer tar header mtime uid gid mode xattr whiteout opaque ');
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = words[(i * 7 + (i >> 10)) % words.length]!;
  if (n > 4096) randomBytes(2048).copy(b, Math.floor(n / 3));
  return b;
}

for (const n of [0, 1, 1000, GZIP_BLOCK - 1, GZIP_BLOCK, GZIP_BLOCK + 1, Math.floor(3.5 * GZIP_BLOCK)]) {
  test(`${n} bytes: one valid gzip member that GNU gzip and zlib decode to the input`, async () => {
    const data = sample(n);
    const gz = await compress(data, 2);
    assert.ok(gunzipSync(gz).equals(data), 'zlib');
    assert.ok(execFileSync('gzip', ['-dc'], { input: gz, maxBuffer: 64 * 1024 * 1024 }).equals(data), 'gzip -dc (checks CRC and size)');
    assert.equal([...gz.subarray(0, 10)], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3], 'fixed header: no name, mtime 0, OS 3');
  });
}

test('the bytes do not depend on the parallelism or on how the input is chunked', async () => {
  const data = sample(Math.floor(4.2 * GZIP_BLOCK));
  const one = await compress(data, 1);
  for (const [p, chunk] of [[2, 64 * 1024], [4, 7777], [8, 3 * GZIP_BLOCK]] as const) {
    assert.ok((await compress(data, p, chunk)).equals(one), `parallelism ${p}, chunks of ${chunk}`);
  }
});

test('the ratio stays gzip\'s: each block is primed with the previous block\'s window', async () => {
  const data = sample(3 * GZIP_BLOCK);
  const ours = await compress(data, 2);
  const plain = gzipSync(data, { level: 6 });
  assert.ok(ours.length <= plain.length * 1.02 + 64, `${ours.length} vs ${plain.length}`);
});

test.run();

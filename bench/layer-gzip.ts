/**
 * `BENCH_ONLY=layer-gzip`: the layer compressor alone on 256 MiB of binary-like data (copies
 * of the node executable, as a build output would be): Node's single-stream createGzip, the
 * ParallelGzip layers use, and `pigz -6` when installed — the throughput issue 10 anchors on.
 */
import { execFile, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { Readable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { createGzip } from 'node:zlib';
import { ParallelGzip } from '../src/oci/layer/parallel-gzip.js';

const SIZE = 256 << 20;

export async function benchLayerGzip(runs: number, out: (s: string) => void): Promise<void> {
  const exe = await readFile(process.execPath);
  const source = (): Readable =>
    Readable.from(
      (function* () {
        for (let sent = 0; sent < SIZE; sent += 1 << 20) {
          const at = sent % (exe.length - (1 << 20));
          yield exe.subarray(at, at + (1 << 20));
        }
      })(),
    );
  const through = async (make: () => Transform): Promise<[number, number]> => {
    const t = performance.now();
    let bytes = 0;
    await pipeline(source(), make(), async (s: AsyncIterable<Buffer>) => {
      for await (const c of s) bytes += c.length;
    });
    return [(performance.now() - t) / 1000, bytes];
  };
  const pigz = await promisify(execFile)('pigz', ['--version']).then(() => true, () => false);
  const candidates: [string, () => Promise<[number, number]>][] = [
    ['createGzip -6', () => through(() => createGzip({ level: 6 }))],
    ['ParallelGzip -6', () => through(() => new ParallelGzip({ level: 6 }))],
    ...(pigz ? [['pigz -6', () => viaPigz(source())] as [string, () => Promise<[number, number]>]] : []),
  ];
  out(`\nlayer-gzip: ${SIZE >> 20} MiB\ncompressor         median s   MB/s   ratio\n`);
  for (const [name, run] of candidates) {
    const rs: [number, number][] = [];
    for (let i = 0; i < runs; i++) rs.push(await run());
    const med = rs.map((r) => r[0]).sort((a, b) => a - b)[Math.floor(rs.length / 2)]!;
    out(`${name.padEnd(18)} ${med.toFixed(2).padStart(8)}   ${(SIZE / 1e6 / med).toFixed(0).padStart(4)}   ${(rs[0]![1] / SIZE).toFixed(3)}\n`);
  }
}

async function viaPigz(src: Readable): Promise<[number, number]> {
  const t = performance.now();
  const child = spawn('pigz', ['-6', '-c'], { stdio: ['pipe', 'pipe', 'ignore'] });
  let bytes = 0;
  child.stdout.on('data', (c: Buffer) => (bytes += c.length));
  const closed = new Promise<void>((res) => child.on('close', () => res()));
  await pipeline(src, child.stdin);
  await closed;
  return [(performance.now() - t) / 1000, bytes];
}

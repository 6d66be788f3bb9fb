/**
 * `node dist/bench/run-network.js`: what RUN's private network costs. Prints the median time to
 * make and to tear down one namespace + slirp4netns (SlirpNetworkProvider without and with its
 * pool), then the wall time of a 20-RUN build with `--network none` against the default network
 * (runs alternate, BENCH_RUNS each, default 5). Not a test: it prints numbers.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SlirpNetworkProvider } from '../src/runtime/sandbox-network.js';
import { buildBusyboxBase } from '../test/helpers/base-image.js';

const CLI = fileURLToPath(new URL('../bin/tsbuild.cjs', import.meta.url));
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

const ctx = { signal: new AbortController().signal, events: { emit: () => undefined } };
const provider = new SlirpNetworkProvider();
for (const reusable of [false, true]) {
  const acquire: number[] = [];
  const release: number[] = [];
  for (let i = 0; i < 50; i++) {
    const t0 = performance.now();
    const net = await provider.acquire(ctx);
    if (!net) throw new Error('no private network can be made here');
    const t1 = performance.now();
    await net.release(reusable);
    acquire.push(t1 - t0);
    release.push(performance.now() - t1);
  }
  console.log(`${reusable ? 'pooled  ' : 'unpooled'}: acquire ${median(acquire).toFixed(1)} ms, release ${median(release).toFixed(1)} ms (median of 50)`);
}
await provider.close();

const work = await mkdtemp(join(tmpdir(), 'bench-net-'));
try {
  const root = join(work, 'root');
  await buildBusyboxBase(root);
  await writeFile(join(work, 'Dockerfile'), ['FROM busybox', ...Array.from({ length: 20 }, (_, i) => `RUN echo ${i} > /f${i}`)].join('\n'));
  const build = (network: string) =>
    new Promise<number>((resolve, reject) => {
      const t0 = performance.now();
      const child = spawn(process.execPath, [CLI, '--root', root, 'build', '--progress', 'quiet', '--no-cache', '--network', network, '-f', join(work, 'Dockerfile'), work], { stdio: 'ignore' });
      child.on('error', reject);
      child.on('close', (code) => (code === 0 ? resolve((performance.now() - t0) / 1000) : reject(new Error(`build exited ${code}`))));
    });
  const times: Record<string, number[]> = { none: [], default: [] };
  for (let i = 0; i < RUNS; i++) for (const n of ['none', 'default']) times[n]!.push(await build(n));
  for (const [n, t] of Object.entries(times)) console.log(`20 RUNs, --network ${n.padEnd(7)}: ${median(t).toFixed(2)} s (median of ${RUNS}; ${t.map((x) => x.toFixed(2)).join(' ')})`);
} finally {
  await rm(work, { recursive: true, force: true });
}

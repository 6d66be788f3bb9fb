/**
 * `BENCH_ONLY=analyze`: `tsbuild analyze` on a 1 GiB, 50-layer image (issue 11, part 3) against
 * `umoci unpack` of the same image, the peer that also reads every layer once. Each layer COPYs
 * 100 files of 210 KiB cut from the node executable (binary-like data, as build outputs are)
 * into a directory of its own and overwrites one shared 1 MiB file, so the report has some
 * waste to find (49 MiB).
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../bin/tsbuild.cjs', import.meta.url));
const LAYERS = 50;
const FILES = 100;
const FILE_SIZE = 210 << 10;

export async function benchAnalyze(root: string, work: string, runs: number, out: (s: string) => void): Promise<void> {
  const dir = await mkdtemp(join(work, 'analyze-'));
  try {
    const ctx = join(dir, 'ctx');
    const exe = await readFile(process.execPath);
    const steps: string[] = ['FROM scratch'];
    for (let l = 0; l < LAYERS; l++) {
      await mkdir(join(ctx, `l${l}`, `l${l}`), { recursive: true });
      for (let f = 0; f < FILES; f++) {
        const at = ((l * FILES + f) * 7919 * 4096) % (exe.length - FILE_SIZE);
        await writeFile(join(ctx, `l${l}`, `l${l}`, `f${f}.bin`), exe.subarray(at, at + FILE_SIZE));
      }
      await writeFile(join(ctx, `l${l}`, 'shared.bin'), exe.subarray(l * 4096, l * 4096 + (1 << 20)));
      steps.push(`COPY l${l}/ /data/`);
    }
    await writeFile(join(ctx, 'Dockerfile'), steps.join('\n') + '\n');
    const layout = join(dir, 'layout');
    await run(process.execPath, [CLI, '--root', root, 'build', '-q', '-t', 'bench-analyze', '--output', `type=oci,dest=${layout},tar=false,name=bench-analyze`, ctx]);
    await run(process.execPath, [CLI, '--root', root, 'build', '-q', '-t', 'bench-analyze', ctx]);
    const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: { annotations?: Record<string, string> }[] };
    const tag = index.manifests[0]?.annotations?.['org.opencontainers.image.ref.name'] ?? 'latest';
    const report = JSON.parse((await run(process.execPath, [CLI, '--root', root, 'analyze', '--format', 'json', 'bench-analyze'])).stdout) as { totalBytes: number; wastedBytes: number; efficiency: number; layers: unknown[] };
    out(`\nanalyze: ${report.layers.length} layers, ${(report.totalBytes / 2 ** 30).toFixed(2)} GiB of files, ${(report.wastedBytes / 2 ** 20).toFixed(0)} MiB wasted, efficiency ${report.efficiency.toFixed(3)}\n`);
    out('command                          median s   runs (s)                 peak RSS MiB\n');
    const cases: [string, () => Promise<{ seconds: number; rssMiB: number }>][] = [
      ['tsbuild analyze NAME', () => timed(CLI, ['--root', root, 'analyze', '--format', 'json', 'bench-analyze'], dir)],
      ['tsbuild analyze LAYOUT-DIR', () => timed(CLI, ['--root', root, 'analyze', '--format', 'json', layout], dir)],
      [
        'umoci unpack',
        async () => {
          const bundle = join(dir, 'bundle');
          try {
            return await timed('umoci', ['unpack', '--image', `${layout}:${tag}`, bundle], dir);
          } finally {
            await rm(bundle, { recursive: true, force: true });
          }
        },
      ],
    ];
    const medians = new Map<string, number>();
    for (const [name, fn] of cases) {
      const ms: { seconds: number; rssMiB: number }[] = [];
      for (let i = 0; i < runs; i++) ms.push(await fn());
      const med = ms.map((m) => m.seconds).sort((a, b) => a - b)[Math.floor(ms.length / 2)]!;
      medians.set(name, med);
      out(`${name.padEnd(32)} ${med.toFixed(2).padStart(8)}   ${ms.map((m) => m.seconds.toFixed(2)).join(' ').padEnd(24)} ${Math.max(...ms.map((m) => m.rssMiB)).toFixed(0).padStart(12)}\n`);
    }
    out(`analyze / umoci unpack: ${(medians.get('tsbuild analyze NAME')! / medians.get('umoci unpack')!).toFixed(2)}x (target: well under 1)\n`);
    await run(process.execPath, [CLI, '--root', root, 'rmi', 'bench-analyze']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function run(cmd: string, args: readonly string[]): Promise<{ stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, [...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b) => (stdout += b));
    child.stderr.on('data', (b) => (stderr += b));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve({ stdout }) : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}\n${stderr.slice(-2000)}`))));
  });
}

/** Elapsed seconds and peak RSS under GNU time (written to a file: the command's stderr is its own). */
async function timed(cmd: string, args: readonly string[], dir: string): Promise<{ seconds: number; rssMiB: number }> {
  const file = join(dir, 'time.out');
  await run('/usr/bin/time', ['-f', '%e %M', '-o', file, cmd, ...args]);
  const [e, m] = (await readFile(file, 'utf8')).trim().split('\n').pop()!.split(' ');
  return { seconds: Number(e), rssMiB: Number(m) / 1024 };
}

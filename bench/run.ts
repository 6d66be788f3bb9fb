/**
 * `npm run bench`: wall time and peak RSS of tsbuild on the cases of issue 03, and the ratio
 * against `buildah bud --layers --isolation chroot` when buildah is installed (runs of the two
 * alternate, in this same process, so both see the same machine state). Not a test: it prints
 * numbers. `BENCH_RUNS=N` sets the runs per case (default 3); `BENCH_ONLY=name,...` picks cases
 * (`isolation-modes`: issue 07's modes against rootless buildah, see isolation-modes.ts;
 * `layer-gzip`: the layer compressor alone, see layer-gzip.ts; `big-run-layer`: a 256 MB RUN layer).
 */
import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { buildBusyboxBase } from '../test/helpers/base-image.js';
import { mountsUnder } from '../test/helpers/mounts.js';
import { benchIsolationModes } from './isolation-modes.js';
import { benchLayerGzip } from './layer-gzip.js';

const pexec = promisify(execFile);
const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const RUNS = Number(process.env.BENCH_RUNS ?? 3);

interface Measure {
  readonly seconds: number;
  readonly rssMiB: number;
}

/** Runs a command under GNU time for elapsed seconds and max RSS; throws on failure. */
async function timed(cmd: string, args: readonly string[]): Promise<Measure> {
  const out = join(tmpdir(), `bench-time-${process.pid}`);
  await new Promise<void>((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-f', '%e %M', '-o', out, cmd, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (b) => (err += b));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}\n${err.slice(-2000)}`))));
  });
  const [e, m] = (await readFile(out, 'utf8')).trim().split('\n').pop()!.split(' ');
  await rm(out, { force: true });
  return { seconds: Number(e), rssMiB: Number(m) / 1024 };
}

interface Builder {
  readonly name: string;
  /** Builds `ctx`; `cold` disables the cache for this run. */
  build(ctx: string, opts: { cold: boolean }): Promise<Measure>;
}

function tsbuild(root: string): Builder {
  return {
    name: 'tsbuild',
    build: (ctx, { cold }) => timed(process.execPath, [CLI, '--root', root, 'build', '--progress', 'quiet', ...(cold ? ['--no-cache'] : []), '-t', 'bench', ctx]),
  };
}

function buildah(dir: string, baseArchive: string): Builder {
  const g = ['--root', join(dir, 'storage'), '--runroot', join(dir, 'run'), '--storage-driver', 'overlay'];
  return {
    name: 'buildah',
    build: (ctx, { cold }) =>
      timed('buildah', [...g, 'bud', '--layers', '--isolation', 'chroot', '--network', 'host', '--quiet', ...(cold ? ['--no-cache'] : []), '--build-arg', `BASE=oci-archive:${baseArchive}`, '-t', 'bench', ctx]),
  };
}

interface Case {
  readonly name: string;
  readonly target?: string;
  /** Creates the context; returns it. */
  setup(dir: string): Promise<string>;
  /** Before each measured run (e.g. touch a file). */
  before?(ctx: string, run: number): Promise<void>;
  /** Measure a cold build (no cache) rather than a rebuild after a warm-up build. */
  readonly cold: boolean;
}

const FROM = 'ARG BASE=busybox\nFROM $BASE';

async function files(ctx: string, entries: Record<string, string | Buffer>): Promise<void> {
  for (const [p, c] of Object.entries(entries)) {
    await mkdir(join(ctx, p, '..'), { recursive: true });
    await writeFile(join(ctx, p), c);
  }
}

/** 20k small files in 100 directories plus twenty 10 MiB files, copied whole by `COPY . /ctx`. */
async function largeContext(ctx: string): Promise<string> {
  await files(ctx, { Dockerfile: `${FROM}\nCOPY . /ctx\nRUN ls /ctx | wc -l\n` });
  for (let d = 0; d < 100; d++) {
    const entries: Record<string, string> = {};
    for (let f = 0; f < 200; f++) entries[`small/d${d}/f${f}.txt`] = `file ${d}/${f}\n`;
    await files(ctx, entries);
  }
  const chunk = Buffer.alloc(10 << 20);
  for (let i = 0; i < 20; i++) {
    chunk.fill(i + 1);
    await writeFile(join(ctx, `big${i}.bin`), chunk);
  }
  return ctx;
}

const TEN_STEPS = `${FROM}
COPY f1 /f1
RUN echo 1 > /r1
COPY f2 /f2
RUN echo 2 > /r2
COPY f3 /f3
RUN echo 3 > /r3
COPY f4 /f4
RUN echo 4 > /r4
COPY f5 /f5
RUN cat /f5 > /r5
`;

const CASES: Case[] = [
  {
    name: 'cold-multistage',
    cold: true,
    target: 'cold build, two stages and a final stage copying from both',
    async setup(ctx) {
      await files(ctx, {
        Dockerfile: `${FROM} AS a\nRUN for i in $(seq 1 200); do echo $i; done > /a\n${FROM.split('\n')[1]} AS b\nRUN for i in $(seq 1 200); do echo $i; done > /b\n${FROM.split('\n')[1]}\nCOPY --from=a /a /a\nCOPY --from=b /b /b\nRUN cat /a /b > /c\n`,
      });
      return ctx;
    },
  },
  {
    name: 'noop-rebuild',
    cold: false,
    target: '≤ 0.3 s for 10 steps, ≤ 0.5× buildah',
    async setup(ctx) {
      await files(ctx, { Dockerfile: TEN_STEPS, f1: '1', f2: '2', f3: '3', f4: '4', f5: '5' });
      return ctx;
    },
  },
  {
    name: 'one-file-touched',
    cold: false,
    target: 'only the last COPY and RUN rerun',
    async setup(ctx) {
      await files(ctx, { Dockerfile: TEN_STEPS, f1: '1', f2: '2', f3: '3', f4: '4', f5: '5' });
      return ctx;
    },
    async before(ctx, run) {
      await writeFile(join(ctx, 'f5'), `changed ${run} ${Date.now()}`);
    },
  },
  {
    name: 'two-heavy-stages',
    cold: true,
    target: '≤ 1.2× the longer stage (3 s) on 2 cores',
    async setup(ctx) {
      const stage = (n: string) => `${FROM.split('\n')[1]} AS ${n}\nRUN sleep 3 && echo ${n} > /${n}\n`;
      await files(ctx, { Dockerfile: `ARG BASE=busybox\n${stage('a')}${stage('b')}${FROM.split('\n')[1]}\nCOPY --from=a /a /a\nCOPY --from=b /b /b\n` });
      return ctx;
    },
  },
  {
    name: 'large-context-noop',
    cold: false,
    target: '≤ 0.5 s no-op rebuild of 20k files + 200 MB',
    setup: largeContext,
  },
  {
    name: 'large-context-cold',
    cold: true,
    target: 'cold COPY of 20k files + 200 MB (copy + layer blob)',
    setup: largeContext,
  },
  {
    name: 'big-run-layer',
    cold: true,
    target: 'cold RUN writing a 256 MB layer: compression on every core',
    async setup(ctx) {
      await files(ctx, { Dockerfile: `${FROM}\nRUN i=0; while [ $i -lt 128 ]; do cat /bin/busybox; i=$((i+1)); done > /big\n` });
      return ctx;
    },
  },
  {
    name: 'forty-layers',
    cold: true,
    target: 'cold build of 40 RUN layers',
    async setup(ctx) {
      const runs = Array.from({ length: 40 }, (_, i) => `RUN echo ${i} > /l${i}`).join('\n');
      await files(ctx, { Dockerfile: `${FROM}\n${runs}\n` });
      return ctx;
    },
  },
];

async function hasBuildah(): Promise<boolean> {
  try {
    await pexec('buildah', ['--version']);
    return true;
  } catch {
    return false;
  }
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'tsbuild-bench-'));
  const only = process.env.BENCH_ONLY?.split(',');
  try {
    const root = join(work, 'root');
    await buildBusyboxBase(root);
    const builders: Builder[] = [tsbuild(root)];
    const archive = join(work, 'busybox.tar');
    const baseCtx = await mkdtemp(join(work, 'base-'));
    await writeFile(join(baseCtx, 'Dockerfile'), 'FROM busybox\n');
    await pexec(process.execPath, [CLI, '--root', root, 'build', '--progress', 'quiet', '--output', `type=oci,dest=${archive}`, '-t', 'busybox', baseCtx]);
    if (await hasBuildah()) {
      builders.push(buildah(join(work, 'buildah'), archive));
    } else {
      process.stdout.write('buildah not installed: tsbuild numbers only\n');
    }
    process.stdout.write(`case                 builder   median s   runs (s)                  peak RSS MiB   target\n`);
    for (const c of CASES) {
      if (only && !only.includes(c.name)) continue;
      const ctx = await c.setup(await mkdtemp(join(work, `${c.name}-`)));
      const results = new Map<string, Measure[]>(builders.map((b) => [b.name, []]));
      if (!c.cold) for (const b of builders) await b.build(ctx, { cold: false }); // warm the cache
      for (let run = 0; run < RUNS; run++) {
        for (const b of run % 2 === 0 ? builders : [...builders].reverse()) {
          await c.before?.(ctx, run);
          results.get(b.name)!.push(await b.build(ctx, { cold: c.cold }));
        }
      }
      const ts = median(results.get('tsbuild')!.map((m) => m.seconds));
      for (const b of builders) {
        const ms = results.get(b.name)!;
        const med = median(ms.map((m) => m.seconds));
        const ratio = b.name === 'tsbuild' ? '' : `  tsbuild/buildah = ${(ts / med).toFixed(2)}`;
        process.stdout.write(
          `${c.name.padEnd(20)} ${b.name.padEnd(9)} ${med.toFixed(2).padStart(8)}   ${ms.map((m) => m.seconds.toFixed(2)).join(' ').padEnd(25)} ${Math.max(...ms.map((m) => m.rssMiB)).toFixed(0).padStart(12)}   ${b.name === 'tsbuild' ? c.target ?? '' : ratio}\n`,
        );
      }
    }
    if (!only || only.includes('layer-gzip')) await benchLayerGzip(RUNS, (s) => process.stdout.write(s));
    if ((!only || only.includes('isolation-modes')) && (await hasBuildah())) await benchIsolationModes(archive, RUNS, (s) => process.stdout.write(s));
  } finally {
    if (await hasBuildah()) {
      const g = ['--root', join(work, 'buildah', 'storage'), '--runroot', join(work, 'buildah', 'run'), '--storage-driver', 'overlay'];
      await pexec('buildah', [...g, 'rm', '-a']).catch(() => undefined);
      await pexec('buildah', [...g, 'rmi', '-a', '-f']).catch(() => undefined);
      for (const m of mountsUnder(work).sort((a, b) => b.length - a.length)) await pexec('umount', ['-l', m]).catch(() => undefined);
    }
    await rm(work, { recursive: true, force: true });
  }
}

await main();

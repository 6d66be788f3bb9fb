/**
 * `npm run bench`: wall time and peak RSS of tsbuild on the cases of issues 03 and 10, against
 * Docker's BuildKit (a dockerd started the safe way, see test/helpers/dockerd.ts; `docker build`
 * with the host network) and `buildah bud --layers --isolation chroot`, when they are installed.
 * Runs of the builders alternate, in this same process, so all see the same machine state; each
 * case prints per builder its median and the ratios tsbuild/BuildKit and tsbuild/buildah. Not a
 * test: it prints numbers. `BENCH_RUNS=N` sets the runs per case (default 3); `BENCH_ONLY=a,b`
 * picks cases (also `startup`, `layer-gzip`: the compressor alone, see layer-gzip.ts, `cache-mounts`:
 * issue 11's CI runner with and without imported cache mounts, see cache-mounts.ts,
 * `isolation-modes`: issue 07's modes, see isolation-modes.ts); `BENCH_PEERS=buildkit,buildah`
 * picks peers (`BENCH_PEERS=` for tsbuild alone); `BENCH_TSBUILD_ARGS` adds build arguments.
 *
 * Before each timed build the bench runs `sync(1)`, untimed, so that no run waits for the
 * writeback of what the run before it (most often the other builder's) left dirty: tsbuild
 * makes what it stores durable, BuildKit does not, and the gigabyte of a BuildKit run was being
 * flushed during the next tsbuild run, whose own fsync then queued behind it. Each builder thus
 * starts from a clean disk; BuildKit's unsynced writes are never charged to anyone.
 * `BENCH_NO_SYNC=1` measures without it.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { buildBusyboxBase } from '../test/helpers/base-image.js';
import { Dockerd, DOCKER } from '../test/helpers/dockerd.js';
import { mountsUnder } from '../test/helpers/mounts.js';
import { benchIsolationModes } from './isolation-modes.js';
import { benchLayerGzip } from './layer-gzip.js';
import { benchCacheMounts } from './cache-mounts.js';
import { benchAnalyze } from './analyze.js';

const pexec = promisify(execFile);
/** The `tsbuild` command, run as users run it: the file itself (a shell line starts node on it, see scripts/bundle.mjs). */
const CLI = fileURLToPath(new URL('../bin/tsbuild.cjs', import.meta.url));
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
/**
 * `BENCH_TSBUILD_ARGS`: more `tsbuild build` arguments, e.g. `--network host --allow network.host`,
 * the network BuildKit's RUN steps get here (dockerd runs without a bridge, see dockerd.ts).
 */
const EXTRA_ARGS = process.env.BENCH_TSBUILD_ARGS?.split(' ').filter(Boolean) ?? [];

interface Measure {
  readonly seconds: number;
  /** Peak RSS of the measured process; for BuildKit that is only the docker client, so not shown. */
  readonly rssMiB: number;
}

/**
 * Runs a command under GNU time for its max RSS, timing it here: GNU time's elapsed time has
 * 10 ms steps, as coarse as a no-op rebuild's difference between builders. Throws on failure.
 */
async function timed(cmd: string, args: readonly string[], env?: NodeJS.ProcessEnv): Promise<Measure> {
  const out = join(tmpdir(), `bench-time-${process.pid}`);
  const t0 = process.hrtime.bigint();
  await new Promise<void>((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-f', '%M', '-o', out, cmd, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: env ? { ...process.env, ...env } : process.env });
    let err = '';
    child.stderr.on('data', (b) => (err += b));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}\n${err.slice(-2000)}`))));
  });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const m = (await readFile(out, 'utf8')).trim().split('\n').pop()!;
  await rm(out, { force: true });
  return { seconds, rssMiB: Number(m) / 1024 };
}

interface BuildOpts {
  /** Disable the cache for this run. */
  readonly cold: boolean;
  /** Export the result as an OCI tarball at this path instead of (only) tagging it. */
  readonly ociTar?: string;
}

interface Builder {
  readonly name: string;
  build(ctx: string, opts: BuildOpts): Promise<Measure>;
}

function tsbuild(root: string): Builder {
  return {
    name: 'tsbuild',
    build: (ctx, { cold, ociTar }) =>
      timed(CLI, ['--root', root, 'build', '--progress', 'quiet', ...EXTRA_ARGS, ...(cold ? ['--no-cache'] : []), ...(ociTar ? ['--output', `type=oci,dest=${ociTar}`] : []), '-t', 'bench', ctx]),
  };
}

function buildkit(dockerd: Dockerd): Builder {
  return {
    name: 'buildkit',
    async build(ctx, { cold, ociTar }) {
      const args = ['-H', dockerd.socket, 'build', '--network', 'host', '--quiet', ...(cold ? ['--no-cache'] : []), '-t', 'bench', ctx];
      // dockerd 20.10's BuildKit now and then loses its own overlay mount mid-step ("lchown
      // …/merged/…: no such file or directory" in a 100k-file COPY; see Dockerd.build): such a
      // run is repeated, and said, rather than ending the bench.
      const b = await timed(DOCKER, args, { DOCKER_BUILDKIT: '1' }).catch((e: Error) => {
        process.stdout.write(`  (BuildKit failed once, repeated: ${/ERROR: [^\n]*/.exec(e.message)?.[0] ?? e.message.split('\n')[0]})\n`);
        return timed(DOCKER, args, { DOCKER_BUILDKIT: '1' });
      });
      if (!ociTar) return b;
      // dockerd 20.10's BuildKit has no oci exporter ("exporter "oci" could not be found"):
      // `docker save` (a docker archive of the same layers) is its way to a tarball.
      const s = await timed(DOCKER, ['-H', dockerd.socket, 'save', '-o', ociTar, 'bench']);
      return { seconds: b.seconds + s.seconds, rssMiB: Math.max(b.rssMiB, s.rssMiB) };
    },
  };
}

function buildah(dir: string, baseArchive: string): Builder {
  const g = ['--root', join(dir, 'storage'), '--runroot', join(dir, 'run'), '--storage-driver', 'overlay'];
  const bud = (ctx: string, cold: boolean) =>
    timed('buildah', [...g, 'bud', '--layers', '--isolation', 'chroot', '--network', 'host', '--quiet', ...(cold ? ['--no-cache'] : []), '--build-arg', `BASE=oci-archive:${baseArchive}`, '-t', 'bench', ctx]);
  return {
    name: 'buildah',
    async build(ctx, { cold, ociTar }) {
      const b = await bud(ctx, cold);
      if (!ociTar) return b;
      // buildah builds and exports in two commands: the case's time is their sum.
      const p = await timed('buildah', [...g, 'push', '--quiet', 'bench', `oci-archive:${ociTar}`]);
      return { seconds: b.seconds + p.seconds, rssMiB: Math.max(b.rssMiB, p.rssMiB) };
    },
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
  /** Measure a (warm) build that exports the image as an OCI tarball. */
  readonly ociTar?: boolean;
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

/** A RUN that writes 518 MB: 262 copies of the ~2 MB static busybox, binary data as a package install writes. */
async function bigRunLayer(ctx: string): Promise<string> {
  await files(ctx, { Dockerfile: `${FROM}\nRUN i=0; while [ $i -lt 262 ]; do cat /bin/busybox; i=$((i+1)); done > /big\n` });
  return ctx;
}

/** 100k files of 4 KiB (410 MB) in 1000 directories, copied whole by `COPY tree /tree`. */
async function hundredThousandFiles(ctx: string): Promise<string> {
  await files(ctx, { Dockerfile: `${FROM}\nCOPY tree /tree\n` });
  const body = Buffer.alloc(4096);
  for (let d = 0; d < 1000; d++) {
    const dir = join(ctx, 'tree', `d${d}`);
    await mkdir(dir, { recursive: true });
    for (let f = 0; f < 100; f++) {
      body.writeUInt32LE(d * 100 + f, 0);
      await writeFile(join(dir, `f${f}`), body);
    }
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
    name: 'noop-200-steps',
    cold: false,
    // 120 layers: Docker's graph driver refuses more than 125 (BuildKit's own snapshotter 128).
    target: '200 cached steps (120 RUN layers, ENV and LABEL between): < 1 ms a step',
    async setup(ctx) {
      const steps = Array.from({ length: 200 }, (_, i) => (i % 5 < 3 ? `RUN echo ${i} > /s${i}` : i % 5 === 3 ? `ENV S${i}=${i}` : `LABEL s${i}=${i}`));
      await files(ctx, { Dockerfile: `${FROM}\n${steps.join('\n')}\n` });
      return ctx;
    },
  },
  {
    name: 'eight-stages',
    cold: true,
    target: 'eight independent 1 s stages, then one copying from all: ≈ the critical path',
    async setup(ctx) {
      const names = Array.from({ length: 8 }, (_, i) => `s${i}`);
      const stages = names.map((n) => `FROM $BASE AS ${n}\nRUN sleep 1 && echo ${n} > /${n}\n`).join('');
      await files(ctx, { Dockerfile: `ARG BASE=busybox\n${stages}FROM $BASE\n${names.map((n) => `COPY --from=${n} /${n} /${n}`).join('\n')}\n` });
      return ctx;
    },
  },
  {
    name: 'run-518mb-layer',
    cold: true,
    target: 'cold RUN writing a 518 MB layer (busybox binaries): no compression on the build path',
    setup: bigRunLayer,
  },
  {
    name: 'export-518mb-oci',
    cold: false,
    ociTar: true,
    target: 'warm build of the 518 MB-layer image exported as an OCI tarball',
    setup: bigRunLayer,
  },
  {
    name: 'copy-1gib-random',
    cold: true,
    target: 'cold COPY of one 1 GiB random (incompressible) file',
    async setup(ctx) {
      await files(ctx, { Dockerfile: `${FROM}\nCOPY big.bin /big.bin\n` });
      await pexec('sh', ['-c', `head -c 1073741824 /dev/urandom > '${join(ctx, 'big.bin')}'`]);
      return ctx;
    },
  },
  {
    name: 'copy-100k-files',
    cold: true,
    target: 'cold COPY of 100k files of 4 KiB (410 MB) in 1000 directories; peak RSS < 200 MB',
    setup: hundredThousandFiles,
  },
  {
    name: 'noop-100k-files',
    cold: false,
    target: 'no-op rebuild of that COPY: the stat cache answers for the 100k files',
    setup: hundredThousandFiles,
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

/** Wall seconds of one run, timed here: GNU time's 10 ms steps are too coarse for start-up. */
async function wall(cmd: string, args: readonly string[], env?: NodeJS.ProcessEnv): Promise<number> {
  const t0 = process.hrtime.bigint();
  await pexec(cmd, [...args], env ? { env } : {});
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

/**
 * `tsbuild --version` and `--help` (run as users run them, the command itself) against
 * `node -e 0`, runs interleaved: the start-up cost every command pays (issue 10 aims at ≤ 1.3×
 * for --version). Min and median, as other work on the machine only ever adds time. With
 * NODE_EXTRA_CA_CERTS set, `node -e 0` parses those certificates first (the tsbuild command
 * defers that, see src/remote/extra-ca-certs.ts), so node without it is shown too.
 */
async function benchStartup(out: (s: string) => void): Promise<void> {
  const runs = Math.max(RUNS, 10);
  const { NODE_EXTRA_CA_CERTS: extraCa, ...withoutCa } = process.env;
  const cases: [string, string, string[], NodeJS.ProcessEnv?][] = [
    ['node -e 0', process.execPath, ['-e', '0']],
    ...(extraCa ? [['node -e 0, no NODE_EXTRA_CA_CERTS', process.execPath, ['-e', '0'], withoutCa] as [string, string, string[], NodeJS.ProcessEnv]] : []),
    ['tsbuild --version', CLI, ['--version']],
    ['tsbuild --help', CLI, ['--help']],
  ];
  const times = cases.map(() => [] as number[]);
  for (let i = 0; i < runs; i++) for (const [j, [, cmd, args, env]] of cases.entries()) times[j]!.push(await wall(cmd, args, env));
  const node = median(times[0]!);
  const bare = median(times[extraCa ? 1 : 0]!);
  out(`\nstartup (${runs} runs)${extraCa ? ` (NODE_EXTRA_CA_CERTS=${extraCa})` : ''}\n${''.padEnd(36)} median s   min s   / node -e 0${extraCa ? '   / node -e 0, no NODE_EXTRA_CA_CERTS' : ''}\n`);
  for (const [j, [name]] of cases.entries()) {
    const m = median(times[j]!);
    out(`${name.padEnd(36)} ${m.toFixed(3).padStart(8)} ${Math.min(...times[j]!).toFixed(3).padStart(7)}   ${(m / node).toFixed(2).padStart(9)}x${extraCa ? `   ${(m / bare).toFixed(2).padStart(9)}x` : ''}\n`);
  }
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'tsbuild-bench-'));
  const only = process.env.BENCH_ONLY?.split(',');
  const peers = process.env.BENCH_PEERS?.split(',') ?? ['buildkit', 'buildah'];
  const out = (s: string) => process.stdout.write(s);
  let dockerd: Dockerd | undefined;
  const buildahDir = join(work, 'buildah');
  const withBuildah = peers.includes('buildah') && (await hasBuildah());
  try {
    const root = join(work, 'root');
    await buildBusyboxBase(root);
    const builders: Builder[] = [tsbuild(root)];
    const archive = join(work, 'busybox.tar');
    await pexec(process.execPath, [CLI, '--root', root, 'save', 'busybox', '-o', archive, '--format', 'oci']);
    if (peers.includes('buildkit')) {
      try {
        dockerd = await Dockerd.start();
        const dockerTar = join(work, 'busybox-docker.tar');
        await pexec(process.execPath, [CLI, '--root', root, 'save', 'busybox', '-o', dockerTar, '--format', 'docker']);
        await dockerd.docker(['load', '-i', dockerTar]);
        builders.push(buildkit(dockerd));
      } catch (e) {
        out(`no BuildKit peer: ${(e as Error).message.split('\n')[0]}\n`);
      }
    }
    if (withBuildah) builders.push(buildah(buildahDir, archive));
    else out('buildah not used\n');
    const peerNames = builders.slice(1).map((b) => b.name);
    out(`case                 builder   median s   runs (s)                  peak RSS MiB   ${peerNames.map((p) => `vs ${p}`).join('  ')}   target\n`);
    for (const c of CASES) {
      if (only && !only.includes(c.name)) continue;
      const ctx = await c.setup(await mkdtemp(join(work, `${c.name}-`)));
      const results = new Map<string, Measure[]>(builders.map((b) => [b.name, []]));
      if (!c.cold) for (const b of builders) await b.build(ctx, { cold: false }); // warm the cache
      for (let run = 0; run < RUNS; run++) {
        for (const b of run % 2 === 0 ? builders : [...builders].reverse()) {
          await c.before?.(ctx, run);
          if (!process.env.BENCH_NO_SYNC) await pexec('sync');
          const ociTar = c.ociTar ? join(work, `${b.name}-${run}.tar`) : undefined;
          results.get(b.name)!.push(await b.build(ctx, { cold: c.cold, ...(ociTar ? { ociTar } : {}) }));
          if (ociTar) await rm(ociTar, { force: true });
        }
      }
      const ts = median(results.get('tsbuild')!.map((m) => m.seconds));
      for (const b of builders) {
        const ms = results.get(b.name)!;
        const med = median(ms.map((m) => m.seconds));
        const rss = b.name === 'buildkit' ? '-' : Math.max(...ms.map((m) => m.rssMiB)).toFixed(0);
        const ratios = b.name === 'tsbuild' ? peerNames.map((p) => `${(ts / median(results.get(p)!.map((m) => m.seconds))).toFixed(2)}x`.padStart(6 + p.length)).join('  ') : '';
        out(`${c.name.padEnd(20)} ${b.name.padEnd(9)} ${med.toFixed(3).padStart(8)}   ${ms.map((m) => m.seconds.toFixed(3)).join(' ').padEnd(25)} ${rss.padStart(12)}   ${ratios}   ${b.name === 'tsbuild' ? c.target ?? '' : ''}\n`);
      }
      await rm(ctx, { recursive: true, force: true });
    }
    if (!only || only.includes('startup')) await benchStartup(out);
    if (!only || only.includes('layer-gzip')) await benchLayerGzip(RUNS, out);
    if (!only || only.includes('cache-mounts')) await benchCacheMounts(CLI, archive, work, RUNS, out);
    if (!only || only.includes('analyze')) await benchAnalyze(root, work, RUNS, out);
    if ((!only || only.includes('isolation-modes')) && withBuildah) await benchIsolationModes(archive, RUNS, out);
  } finally {
    if (dockerd) await dockerd.stop();
    if (withBuildah) {
      const g = ['--root', join(buildahDir, 'storage'), '--runroot', join(buildahDir, 'run'), '--storage-driver', 'overlay'];
      await pexec('buildah', [...g, 'rm', '-a']).catch(() => undefined);
      await pexec('buildah', [...g, 'rmi', '-a', '-f']).catch(() => undefined);
      for (const m of mountsUnder(work).sort((a, b) => b.length - a.length)) await pexec('umount', ['-l', m]).catch(() => undefined);
    }
    await rm(work, { recursive: true, force: true });
  }
}

await main();

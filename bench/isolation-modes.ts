/**
 * Issue 07's measure: cold and no-op times of each isolation mode on the same Dockerfile,
 * next to rootless buildah (`buildah bud --isolation chroot`, run by the same non-root user).
 * Modes: overlay (root), rootless (a user with subordinate ids, and root without CAP_SYS_ADMIN),
 * chroot (root without CAP_SYS_ADMIN). Runs alternate between builders, as in run.ts.
 */
import { execFile, spawn } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { withBuildUser, type BuildUser } from '../test/helpers/build-user.js';

const pexec = promisify(execFile);
const CLI = fileURLToPath(new URL('../bin/tsbuild.cjs', import.meta.url));

const DOCKERFILE = `ARG BASE=busybox
FROM $BASE
COPY f1 /f1
RUN echo 1 > /r1 && mkdir -p /d && for i in $(seq 1 200); do echo $i > /d/$i; done
COPY f2 /f2
RUN rm -rf /d && mkdir /d && echo 2 > /d/x
RUN chown 1000:1000 /r1 && ln /r1 /r1.link
COPY f3 /f3
RUN cat /f1 /f2 /f3 > /all
`;

interface ModeBuilder {
  readonly name: string;
  build(cold: boolean): Promise<number>;
}

/** Seconds of wall time of `argv` run through `wrap` (GNU time, so the parent's own overhead is out). */
async function timedAs(wrap: (argv: string[]) => Promise<{ code: number | null; stderr: string }>, argv: string[], timeFile: string): Promise<number> {
  const r = await wrap(['/usr/bin/time', '-f', '%e', '-o', timeFile, ...argv]);
  if (r.code !== 0) throw new Error(`${argv.join(' ')} exited ${r.code}\n${r.stderr.slice(-2000)}`);
  return Number((await readFile(timeFile, 'utf8')).trim().split('\n').pop());
}

function asRoot(argv: string[], capsh: boolean): Promise<{ code: number | null; stderr: string }> {
  const [cmd, ...args] = capsh ? ['capsh', '--drop=cap_sys_admin', '--', '-c', `exec ${argv.map((a) => `'${a}'`).join(' ')}`] : argv;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd!, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (b) => (stderr += b));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/**
 * Prints one line per builder and case. `baseArchive` is the busybox base as an OCI archive
 * (loaded into every store, and given to buildah as `oci-archive:`).
 */
export async function benchIsolationModes(baseArchiveIn: string, runs: number, out: (s: string) => void): Promise<void> {
  // Its own world-readable dir: the non-root user reads the context and the base archive.
  const dir = await mkdtemp(join(tmpdir(), 'tsbuild-bench-modes-'));
  await chmod(dir, 0o755);
  const baseArchive = join(dir, 'base.tar');
  await copyFile(baseArchiveIn, baseArchive);
  const ctx = join(dir, 'ctx');
  await mkdir(ctx);
  await writeFile(join(ctx, 'Dockerfile'), DOCKERFILE);
  for (const f of ['f1', 'f2', 'f3']) await writeFile(join(ctx, f), `${f}\n`);
  await chmod(baseArchive, 0o644);
  const rootStore = join(dir, 'root-store');
  const capStore = join(dir, 'cap-store');
  const timeFile = join(dir, 'time');
  const tsb = (root: string, cold: boolean, extra: string[] = []) => [process.execPath, CLI, '--root', root, ...extra, 'build', '--progress', 'quiet', ...(cold ? ['--no-cache'] : []), ctx];
  for (const root of [rootStore, capStore]) await pexec(process.execPath, [CLI, '--root', root, 'load', '-i', baseArchive]);

  try {
    await withBuildUser({ subordinateIds: true }, async (user: BuildUser) => {
      const userTime = join(user.home, 'time');
      const asUser = (argv: string[]) => user.run(argv[0]!, argv.slice(1));
      const userStore = join(user.home, 'tsbuild');
      const load = await user.tsbuild(['--root', userStore, 'load', '-i', baseArchive]);
      if (load.code !== 0) throw new Error(`load as ${user.name}: ${load.stderr}`);
      const buildahDirs = ['--root', join(user.home, 'buildah'), '--runroot', join(user.home, 'buildah-run')];
      const builders: ModeBuilder[] = [
        { name: 'overlay (root)', build: (cold) => timedAs((a) => asRoot(a, false), tsb(rootStore, cold), timeFile) },
        { name: 'rootless (user)', build: (cold) => timedAs(asUser, tsb(userStore, cold), userTime) },
        { name: 'rootless (no SYS_ADMIN)', build: (cold) => timedAs((a) => asRoot(a, true), tsb(capStore, cold), timeFile) },
        { name: 'chroot (no SYS_ADMIN)', build: (cold) => timedAs((a) => asRoot(a, true), tsb(capStore, cold, ['--isolation', 'chroot']), timeFile) },
        {
          name: 'buildah rootless',
          build: (cold) =>
            timedAs(asUser, ['buildah', ...buildahDirs, 'bud', '--layers', '--isolation', 'chroot', '--network', 'host', '--quiet', ...(cold ? ['--no-cache'] : []), '--build-arg', `BASE=oci-archive:${baseArchive}`, '-t', 'bench', ctx], userTime),
        },
      ];
      for (const cold of [true, false]) {
        const results = new Map<string, number[]>(builders.map((b) => [b.name, []]));
        if (!cold) for (const b of builders) await b.build(false); // warm every store
        for (let run = 0; run < runs; run++) {
          for (const b of run % 2 === 0 ? builders : [...builders].reverse()) results.get(b.name)!.push(await b.build(cold));
        }
        const root = median(results.get('overlay (root)')!);
        const buildah = median(results.get('buildah rootless')!);
        for (const b of builders) {
          const med = median(results.get(b.name)!);
          out(`${(cold ? 'modes-cold' : 'modes-noop').padEnd(12)} ${b.name.padEnd(24)} ${med.toFixed(2).padStart(7)} s   runs ${results.get(b.name)!.map((s) => s.toFixed(2)).join(' ').padEnd(18)} ×root ${(med / root).toFixed(2)}  ×buildah-rootless ${(med / buildah).toFixed(2)}\n`);
        }
      }
      await user.run('buildah', [...buildahDirs, 'rmi', '-a', '-f']).catch(() => undefined);
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

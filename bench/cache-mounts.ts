/**
 * `BENCH_ONLY=cache-mounts`: issue 11's CI-runner scenario. Runner A builds and exports its cache
 * with the RUN cache mounts (`--cache-to type=local,…,mounts=true`); then, on fresh empty roots,
 * the same Dockerfile with a changed input (so the package-installing RUN runs again) is built
 * with and without importing that cache. The "package manager" downloads 100 packages of
 * 256 KiB from a server on 127.0.0.1 that answers each after 20 ms, as a near mirror would,
 * unless its cache mount already holds them.
 */
import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const pexec = promisify(execFile);
const PACKAGES = Array.from({ length: 100 }, (_, i) => `p${i}`);

const DOCKERFILE = `FROM busybox
ARG REPO
COPY manifest.txt /app/manifest.txt
RUN --network=host --mount=type=cache,target=/var/cache/pm,id=pm \\
    for p in $(cat /app/manifest.txt); do \\
      [ -f /var/cache/pm/$p ] || wget -q -O /var/cache/pm/$p "$REPO/$p"; \\
      cp /var/cache/pm/$p /app/$p; \\
    done
`;

export async function benchCacheMounts(cli: string, baseArchive: string, work: string, runs: number, out: (s: string) => void): Promise<void> {
  const body = Buffer.alloc(256 * 1024, 7);
  let downloads = 0;
  const server = createServer((req, res) => {
    downloads++;
    setTimeout(() => res.writeHead(200, { 'content-length': body.length }).end(body), 20);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const repo = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const dir = await mkdtemp(join(work, 'cache-mounts-'));
  try {
    const ctx = join(dir, 'ctx');
    await mkdir(ctx);
    await writeFile(join(ctx, 'Dockerfile'), DOCKERFILE);
    await writeFile(join(ctx, 'manifest.txt'), PACKAGES.join(' '));
    const cache = join(dir, 'cache');
    const build = async (root: string, extra: string[]): Promise<number> => {
      const t = performance.now();
      await pexec(process.execPath, [cli, '--root', root, 'build', '--progress', 'quiet', '--allow', 'network.host', '--build-arg', `REPO=${repo}`, ...extra, ctx], { maxBuffer: 64 << 20 });
      return (performance.now() - t) / 1000;
    };
    const freshRoot = async (name: string): Promise<string> => {
      const root = join(dir, name);
      await pexec(process.execPath, [cli, '--root', root, 'load', '-i', baseArchive]);
      return root;
    };
    await build(await freshRoot('runner-a'), ['--cache-to', `type=local,dest=${cache},mode=max,mounts=true`]);
    const times: Record<'with' | 'without', number[]> = { with: [], without: [] };
    const fetched: Record<'with' | 'without', number[]> = { with: [], without: [] };
    for (let run = 0; run < runs; run++) {
      // The input changes, so the RUN runs again on every runner, as after a commit.
      await writeFile(join(ctx, 'manifest.txt'), PACKAGES.join(' ') + ' '.repeat(run + 1));
      for (const kind of run % 2 ? (['without', 'with'] as const) : (['with', 'without'] as const)) {
        const root = await freshRoot(`runner-${kind}-${run}`);
        const before = downloads;
        times[kind].push(await build(root, kind === 'with' ? ['--cache-from', `type=local,src=${cache}`] : []));
        fetched[kind].push(downloads - before);
        await rm(root, { recursive: true, force: true });
      }
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    out(`\ncache-mounts: second CI build on an empty root, ${PACKAGES.length} packages of 256 KiB at 20 ms each\n`);
    out(`  without imported mounts ${median(times.without).toFixed(2)} s (${median(fetched.without)} downloads)\n`);
    out(`  with imported mounts    ${median(times.with).toFixed(2)} s (${median(fetched.with)} downloads) = ${(median(times.with) / median(times.without)).toFixed(2)}x\n`);
  } finally {
    server.close();
    await rm(dir, { recursive: true, force: true });
  }
}

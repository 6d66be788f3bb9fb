import { Command } from 'commander';
import { diskUsage, prune } from '../build/gc.js';
import { BuildError } from '../errors.js';
import { parseGoDuration } from '../frontend/go-duration.js';
import type { GlobalOptions } from './globals.js';
import { stateRoot } from './state-root.js';

export const GC_VERBS = ['du', 'prune'];

/** `tsbuild du` (what the root holds, what a prune frees) and `tsbuild prune` (garbage collection). */
export function gcCommands(globals: GlobalOptions, setExit: (code: number) => void): Command[] {
  const du = new Command('du').description('show disk usage of the image store and the build cache').action(async () => {
    const u = await diskUsage(stateRoot(globals.root, process.env));
    process.stdout.write(
      [
        `cache records\t${u.cacheRecords}`,
        `layers\t${u.layers.count}\t${formatBytes(u.layers.bytes)}`,
        `blobs\t${u.blobs.count}\t${formatBytes(u.blobs.bytes)}`,
        `reclaimable\t${formatBytes(u.danglingBytes)} (prune), ${formatBytes(u.danglingBytes + u.cacheOnlyBytes)} (prune --all)`,
      ].join('\n') + '\n',
    );
    setExit(0);
  });
  const pruneCmd = new Command('prune')
    .description('remove build cache and unreferenced layers and blobs')
    .option('-a, --all', 'remove all build cache, not only what no image uses')
    .option('--keep-storage <size>', 'keep the most recently used cache up to this size (e.g. 2GB, 500MB)')
    .option('--filter <filter>', 'until=DURATION: only cache unused for longer (e.g. until=24h)', (v: string, p: string[]) => [...p, v], [])
    .action(async (flags: { all?: boolean; keepStorage?: string; filter: string[] }) => {
      let olderThanMs: number | undefined;
      for (const f of flags.filter) {
        const m = /^until=(.+)$/.exec(f);
        if (!m) throw new BuildError('USAGE', `--filter ${JSON.stringify(f)}: only until=DURATION is supported`);
        try {
          olderThanMs = parseGoDuration(m[1]!) / 1e6;
        } catch (e) {
          throw new BuildError('USAGE', `--filter ${JSON.stringify(f)}: ${(e as Error).message}`, { hint: 'durations look like 24h, 90m, 1h30m' });
        }
      }
      const r = await prune(stateRoot(globals.root, process.env), {
        all: flags.all,
        keepStorage: flags.keepStorage === undefined ? undefined : parseSize(flags.keepStorage),
        olderThanMs,
      });
      process.stdout.write(`removed ${r.records} cache records, ${r.layers} layers, ${r.blobs} blobs; reclaimed ${formatBytes(r.bytes)}\n`);
      setExit(0);
    });
  return [du, pruneCmd];
}

/** `512`, `10kb`, `500MB`, `1.5GiB` → bytes (k = 1024, as docker's --keep-storage). */
export function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?$/i.exec(s.trim());
  if (!m) throw new BuildError('USAGE', `--keep-storage ${JSON.stringify(s)}: expected a size like 500MB or 2GB`);
  const power = ' kmgt'.indexOf((m[2] || ' ').toLowerCase());
  return Math.floor(Number(m[1]) * 1024 ** power);
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

import { Command } from 'commander';
import { BuildError } from '../errors.js';
import { gcPolicy } from './config-file.js';
import type { GlobalOptions } from './globals.js';
import { formatBytes, parseByteSize } from '../byte-size.js';
import { parseDurationMs } from './units.js';
import { stateRoot } from './state-root.js';

/** `tsbuild du` (what the root holds, what a prune frees) and `tsbuild prune` (garbage collection). */
export function gcCommands(globals: GlobalOptions, signal: AbortSignal, setExit: (code: number) => void): Command[] {
  // The garbage collector is imported when a verb runs, not to define them (--help).
  const du = new Command('du').description('show disk usage of the image store and the build cache').action(async () => {
    const { diskUsage } = await import('../orchestrator/gc.js');
    const u = await diskUsage(stateRoot(globals.root, process.env), signal);
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
      // Flags win; tsbuild.toml's [gc] policy fills in what they leave unset.
      const policy = gcPolicy(globals.settings?.config ?? {});
      let olderThanMs = policy.olderThanMs;
      for (const f of flags.filter) {
        const m = /^until=(.+)$/.exec(f);
        if (!m) throw new BuildError('USAGE', `--filter ${JSON.stringify(f)}: only until=DURATION is supported`);
        olderThanMs = parseDurationMs(m[1]!);
        if (olderThanMs === undefined) throw new BuildError('USAGE', `--filter ${JSON.stringify(f)}: not a duration`, { hint: 'durations look like 24h, 90m, 1h30m, 7d' });
      }
      let keepStorage = policy.keepStorage;
      if (flags.keepStorage !== undefined) {
        keepStorage = parseByteSize(flags.keepStorage);
        if (keepStorage === undefined) throw new BuildError('USAGE', `--keep-storage ${JSON.stringify(flags.keepStorage)}: expected a size like 500MB or 2GB`);
      }
      const { prune } = await import('../orchestrator/gc.js');
      const r = await prune(stateRoot(globals.root, process.env), { all: flags.all, keepStorage, olderThanMs }, signal);
      process.stdout.write(`removed ${r.records} cache records, ${r.layers} layers, ${r.blobs} blobs; reclaimed ${formatBytes(r.bytes)}\n`);
      setExit(0);
    });
  return [du, pruneCmd];
}

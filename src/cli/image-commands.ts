import { isolationSetting } from './isolation-setting.js';
import { Command, Option } from 'commander';
import type { OwnedWorker } from '../orchestrator/worker.js';
import type { Ctx } from '../ctx.js';
import { isatty } from 'node:tty';
import { posix } from 'node:path';
import { BuildError } from '../errors.js';
import { nullSink } from '../events.js';
import type { SaveItem } from '../images/save-images.js';
import { parseReference } from '../oci/reference.js';
import type { GlobalOptions } from './globals.js';
import { bytes } from './progress-format.js';
import { stateRoot } from './state-root.js';
import { checkOutputDest } from './output-dest.js';
import { openInputFile } from './input-file.js';
import { expansionLimits } from './config-file.js';
import { compressionFromFlags, withCompressionFlags, type CompressionFlags } from './compression-flags.js';

/**
 * Local store management: `images`, `tag`, `rmi`, `inspect`, `history`, `save`, `load`, `export`, `run`.
 * Results go to stdout (tables or JSON), messages to stderr; failures throw to main().
 */
export function imageCommands(globals: GlobalOptions, signal: AbortSignal, setExit: (code: number) => void): Command[] {
  const ctx: Ctx = { signal, events: nullSink };
  // The store, images and exporters are imported when a verb runs, not to define them (--help).
  const deps = () => import('./image-deps.js');
  const withWorker = async <T>(fn: (w: OwnedWorker) => Promise<T>): Promise<T> => {
    const { openWorker } = await deps();
    const w = await openWorker(stateRoot(globals.root, process.env), { privateTmp: true, expansionLimits: expansionLimits(globals.settings?.config ?? {}), isolation: isolationSetting(globals, process.env) });
    try {
      // The quick verbs (images, tag, rmi…) stop at this point when interrupted, before any change.
      signal.throwIfAborted();
      return await fn(w);
    } finally {
      await w.close();
    }
  };
  const out = (s: string) => process.stdout.write(s);

  const images = new Command('images')
    .description('list the images in the local store')
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'json']).default('table'))
    .option('-q, --quiet', 'print only image IDs')
    .action(async (flags: { format: string; quiet?: boolean }) => {
      const { listImages } = await deps();
      const list = await withWorker((w) => listImages(w.images));
      if (flags.quiet) out(list.map((i) => shortId(i.id) + '\n').join(''));
      else if (flags.format === 'json') out(JSON.stringify(list, null, 2) + '\n');
      else {
        const now = Date.now();
        out(table([['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'], ...list.map((i) => [i.repository, i.tag, shortId(i.id), i.created ? ago(now, Date.parse(i.created)) : 'N/A', bytes(i.size)])]));
      }
      setExit(0);
    });

  const tag = new Command('tag')
    .description('give a stored image another name')
    .argument('<source>', 'image name or ID')
    .argument('<target>', 'new name[:tag]')
    .action(async (source: string, target: string) => {
      const { findImage } = await deps();
      const name = parseReference(target).toString();
      await withWorker(async (w) => {
        const found = await findImage(w.images, source);
        await w.images.tag(name, { mediaType: found.descriptor.mediaType, digest: found.descriptor.digest, size: found.descriptor.size });
      });
      setExit(0);
    });

  const rmi = new Command('rmi')
    .description('remove image names from the local store (prune reclaims the space)')
    .argument('<names...>', 'image names')
    .option('-f, --force', 'remove even when another tagged image is built on it')
    .action(async (names: string[], flags: { force?: boolean }) => {
      const { dependentsBlockingRemoval, findImage } = await deps();
      await withWorker(async (w) => {
        for (const n of names) {
          const found = await findImage(w.images, n);
          if (!found.name) throw new BuildError('USAGE', `${n}: remove images by name`);
          const deps = flags.force ? [] : await dependentsBlockingRemoval(w.images, found.name);
          if (deps.length) {
            throw new BuildError('USAGE', `cannot remove ${n}: image ${deps.map((d) => parseReference(d.name).familiar).join(', ')} is built on it`, {
              hint: 'remove those first, or pass --force (their layers stay; only this name goes)',
            });
          }
          await w.images.untag(found.name);
          out(`Untagged: ${parseReference(found.name).familiar}\n`);
        }
      });
      setExit(0);
    });

  const inspect = new Command('inspect')
    .description('print the manifest and config of a stored image as JSON')
    .argument('<name>', 'image name or ID')
    .action(async (name: string) => {
      const { findImage, readImage } = await deps();
      const doc = await withWorker(async (w) => {
        const found = await findImage(w.images, name);
        const img = await readImage(w.blobs, found.descriptor);
        return { Name: found.name, Id: img.configDescriptor.digest, Digest: img.manifestDescriptor.digest, Descriptor: img.manifestDescriptor, Manifest: img.manifest, Config: img.config };
      });
      out(JSON.stringify(doc, null, 2) + '\n');
      setExit(0);
    });

  const history = new Command('history')
    .description('show how an image was built, newest step first')
    .argument('<name>', 'image name or ID')
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'json']).default('table'))
    .option('--no-trunc', 'do not cut CREATED BY')
    .action(async (name: string, flags: { format: string; trunc: boolean }) => {
      const { imageHistory, findImage, readImage } = await deps();
      const rows = await withWorker(async (w) => imageHistory(await readImage(w.blobs, (await findImage(w.images, name)).descriptor)));
      if (flags.format === 'json') out(JSON.stringify(rows, null, 2) + '\n');
      else {
        const now = Date.now();
        const by = (s: string) => (flags.trunc && s.length > 45 ? s.slice(0, 44) + '…' : s);
        out(table([['LAYER', 'CREATED', 'CREATED BY', 'SIZE', 'COMMENT'], ...rows.map((r) => [r.layer ? shortId(r.layer) : '<missing>', r.created ? ago(now, Date.parse(r.created)) : 'N/A', by(r.createdBy), r.emptyLayer ? '0B' : bytes(r.size), r.comment ?? ''])]));
      }
      setExit(0);
    });

  const save = new Command('save')
    .description('write images to a tar archive (OCI layout or docker load format)')
    .argument('<names...>', 'image names or IDs')
    .requiredOption('-o, --output <file>', 'archive to write')
    .addOption(new Option('--format <format>', 'archive format').choices(['oci', 'docker']).default('docker'))
    .action(async (names: string[], flags: { output: string; format: 'oci' | 'docker' } & CompressionFlags) => {
      const compression = compressionFromFlags(flags);
      const { findImage, saveImages, compressImage, compressedLayersDir } = await deps();
      await checkOutputDest(flags.output, 'file', '-o, --output');
      await withWorker(async (w) => {
        const items = new Map<string, { names: string[]; descriptor: SaveItem['descriptor'] }>();
        for (const n of names) {
          const found = await findImage(w.images, n);
          // Layers a build stored uncompressed go into the archive as gzip by default (as `docker save` of a pulled image would carry them).
          const descriptor = { ...found.descriptor, ...(await compressImage(w.blobs, compressedLayersDir(w.dirs), found.descriptor, compression, ctx.signal)) };
          const item = items.get(descriptor.digest) ?? { names: [], descriptor };
          if (found.name && !item.names.includes(found.name)) item.names.push(found.name);
          items.set(descriptor.digest, item);
        }
        await saveImages(w.images, [...items.values()], flags.output, flags.format, ctx);
      });
      setExit(0);
    });
  withCompressionFlags(save);

  const load = new Command('load')
    .description('load images from an OCI or docker archive into the local store')
    .option('-i, --input <file>', 'archive to read (default: standard input)')
    .option('-q, --quiet', 'print only the manifest digests')
    .action(async (flags: { input?: string; quiet?: boolean }) => {
      const { loadArchive } = await deps();
      const input = flags.input && flags.input !== '-' ? openInputFile(flags.input) : process.stdin;
      const loaded = await withWorker((w) => loadArchive(w.images, input, ctx));
      for (const l of loaded) {
        if (flags.quiet) out(l.manifest.digest + '\n');
        else if (l.names.length) for (const n of l.names) out(`Loaded image: ${parseReference(n).familiar}\n`);
        else out(`Loaded image: ${l.manifest.digest} (no name; give it one with tsbuild tag)\n`);
      }
      setExit(0);
    });

  const exportCmd = new Command('export')
    .description("write a stored image's root filesystem into a directory (as --output type=local)")
    .argument('<name>', 'image name or ID')
    .requiredOption('-o, --output <dir>', 'destination directory')
    .action(async (name: string, flags: { output: string }) => {
      const { exportLocal, findImage } = await deps();
      await checkOutputDest(flags.output, 'tree', '-o, --output');
      await withWorker(async (w) => exportLocal(w.blobs, (await findImage(w.images, name)).descriptor, flags.output, ctx, w.expansionLimits));
      setExit(0);
    });

  const run = new Command('run')
    .description('run a command in a throwaway container from a stored image (its writes are discarded)')
    .argument('<name>', 'image name or ID')
    .argument('[command...]', 'command and arguments (after --), instead of the image\'s Cmd')
    .addOption(new Option('--network <mode>', 'network namespace').choices(['host', 'none']).default('host'))
    .option('-i, --interactive', 'feed stdin to the command (as docker run -i)')
    .option('-t, --tty', 'give the command a pseudo-terminal on this terminal (as docker run -t)')
    .option('--tmpfs <path>', 'mount an empty tmpfs at this absolute path (repeatable), e.g. for a tsbuild store inside', (v: string, acc: string[]) => [...acc, tmpfsPath(v)], [])
    .action(async (name: string, command: string[], flags: { network: 'host' | 'none'; interactive?: boolean; tty?: boolean; tmpfs: string[] }) => {
      const { findImage, runImage } = await deps();
      // isatty, not process.stdin: that would open a tty stream on the fd runc is about to share.
      if (flags.tty && !(isatty(0) && isatty(1))) {
        throw new BuildError('USAGE', '-t, --tty: the input device is not a TTY', { hint: 'run it from a terminal, or leave out -t (use -i to pipe stdin)' });
      }
      const code = await withWorker(async (w) => {
        const found = await findImage(w.images, name);
        return runImage(
          w,
          found.descriptor,
          { command: command.length ? command : undefined, network: flags.network, tmpfs: flags.tmpfs, ...(flags.tty ? { tty: true, ...terminalSize() } : {}) },
          {
            onOutput: (stream, chunk) => void (stream === 1 ? process.stdout : process.stderr).write(chunk),
            ...(flags.interactive ? { stdin: process.stdin } : {}),
          },
          ctx,
        );
      });
      setExit(code);
    });

  return [images, tag, rmi, inspect, history, save, load, exportCmd, run];
}

/** `--tmpfs PATH`: an absolute, normalised container path; docker's `PATH:OPTIONS` form is not taken. */
function tmpfsPath(v: string): string {
  if (!v.startsWith('/') || v.includes(':') || posix.normalize(v) !== v || v === '/') {
    throw new BuildError('USAGE', `--tmpfs ${v}: give an absolute container path other than / (no options after ':')`, { hint: 'e.g. --tmpfs /var/lib/tsbuild' });
  }
  return v;
}

/** Docker's short image ID: the first 12 hex digits. */
function shortId(digest: string): string {
  return digest.replace(/^sha256:/, '').slice(0, 12);
}

/** Columns padded to their widest cell, three spaces apart, as docker prints tables. */
function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]! + 3))).join('').trimEnd() + '\n').join('');
}

/** `5 seconds ago`, `3 hours ago`: docker's relative CREATED column. */
function ago(now: number, then: number): string {
  if (!Number.isFinite(then)) return 'N/A';
  const s = Math.max(0, Math.round((now - then) / 1000));
  const units: [number, string][] = [[365 * 86400, 'year'], [30 * 86400, 'month'], [7 * 86400, 'week'], [86400, 'day'], [3600, 'hour'], [60, 'minute'], [1, 'second']];
  for (const [size, unit] of units) {
    const n = Math.floor(s / size);
    if (n >= 1) return `${n} ${unit}${n > 1 ? 's' : ''} ago`;
  }
  return 'Less than a second ago';
}

/**
 * The size of our terminal (standard output, which `-t` requires to be one), so the container's
 * pty starts with it: runc only applies the size after the process has started.
 */
function terminalSize(): { ttySize?: { height: number; width: number } } {
  const { rows, columns } = process.stdout;
  return rows && columns ? { ttySize: { height: rows, width: columns } } : {};
}

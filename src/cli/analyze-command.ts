import { Command, Option } from 'commander';
import { parseByteSize } from '../byte-size.js';
import type { Ctx } from '../ctx.js';
import { BuildError } from '../errors.js';
import { nullSink } from '../events.js';
import type { ImageAnalysis } from '../images/analyze-image.js';
import { hostPlatform } from '../oci/image.js';
import { formatPlatform, parsePlatform } from '../oci/platform.js';
import { finalFiles, renderTree } from './analyze-tree.js';
import { expansionLimits } from './config-file.js';
import { openInputFile } from './input-file.js';
import type { GlobalOptions } from './globals.js';
import { isolationSetting } from './isolation-setting.js';
import { bytes } from './progress-format.js';
import { stateRoot } from './state-root.js';

interface AnalyzeFlags {
  format: 'table' | 'json';
  tree?: boolean;
  layer?: string;
  depth: string;
  top: string;
  platform?: string;
  maxWasted?: string;
  minEfficiency?: string;
}

/**
 * `tsbuild analyze IMAGE`: where an image's bytes go, layer by layer (docs/analyze.md). The
 * report goes to stdout; a failed gate (--max-wasted, --min-efficiency) prints its reason on
 * stderr and exits 1, after the report.
 */
export function analyzeCommand(globals: GlobalOptions, signal: AbortSignal, setExit: (code: number) => void): Command {
  return new Command('analyze')
    .description("show where an image's bytes go: per layer added, changed, removed and wasted bytes, and an efficiency score")
    .argument('<image>', 'image name or ID in the store, oci-layout://DIR[:TAG|@DIGEST], a layout directory, oci-archive:FILE, docker-archive:FILE or an archive file')
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'json']).default('table'))
    .option('--tree', "print the final filesystem as a tree (with --layer, that layer's changes marked A/M/D)")
    .option('--layer <index>', 'with --tree: the layer to show (0 is the base layer)')
    .option('--depth <n>', 'with --tree: directory levels to show', '4')
    .option('--top <n>', 'how many of the biggest files and the most wasteful paths to list', '10')
    .option('--platform <os/arch[/variant]>', 'platform to pick from a multi-platform image (default: this host)')
    .option('--max-wasted <bytes>', 'exit 1 when more bytes than this are wasted (e.g. 10MB, 1g; units are powers of 1024)')
    .option('--min-efficiency <ratio>', 'exit 1 when the efficiency is below this ratio (0 to 1, e.g. 0.95)')
    .action(async (spec: string, flags: AnalyzeFlags) => {
      const top = count(flags.top, '--top');
      const depth = count(flags.depth, '--depth');
      const markLayer = flags.layer === undefined ? undefined : count(flags.layer, '--layer');
      if (markLayer !== undefined && !flags.tree) throw new BuildError('USAGE', '--layer: only with --tree');
      const maxWasted = flags.maxWasted === undefined ? undefined : parseByteSize(flags.maxWasted);
      if (flags.maxWasted !== undefined && maxWasted === undefined) throw new BuildError('USAGE', `--max-wasted ${JSON.stringify(flags.maxWasted)}: expected a size like 0, 500k, 10MB or 1g`);
      const minEfficiency = flags.minEfficiency === undefined ? undefined : Number(flags.minEfficiency);
      if (minEfficiency !== undefined && !(flags.minEfficiency!.trim() !== '' && minEfficiency >= 0 && minEfficiency <= 1)) {
        throw new BuildError('USAGE', `--min-efficiency ${JSON.stringify(flags.minEfficiency)}: expected a ratio from 0 to 1, e.g. 0.95`);
      }
      const platform = flags.platform ? parsePlatform(flags.platform) : hostPlatform();
      const ctx: Ctx = { signal, events: nullSink };
      // The store and the analysis are imported when analyze runs, not to define it (--help).
      const [{ openWorker }, { resolveAnalyzeSource }, { analyzeImage }] = await Promise.all([
        import('../orchestrator/worker.js'),
        import('../images/analyze-source.js'),
        import('../images/analyze-image.js'),
      ]);
      const w = await openWorker(stateRoot(globals.root, process.env), { privateTmp: true, expansionLimits: expansionLimits(globals.settings?.config ?? {}), isolation: isolationSetting(globals, process.env) });
      let report: ImageAnalysis;
      let name: string;
      let meta: { manifest: string; config: string; platform: string };
      try {
        signal.throwIfAborted();
        const src = await resolveAnalyzeSource(spec, w.images, platform, w.dirs.tmp, openInputFile, ctx);
        if (markLayer !== undefined && markLayer >= src.image.layers.length) {
          throw new BuildError('USAGE', `--layer ${markLayer}: the image has ${src.image.layers.length} layers (0 to ${src.image.layers.length - 1})`);
        }
        report = await analyzeImage(src.blobs, src.image, { top, ...(markLayer !== undefined ? { markLayer } : {}) }, ctx);
        name = src.name;
        const c = src.image.config;
        meta = { manifest: src.image.manifestDescriptor.digest, config: src.image.configDescriptor.digest, platform: formatPlatform({ os: c.os, architecture: c.architecture, ...(c.variant ? { variant: c.variant } : {}) }) };
      } finally {
        await w.close();
      }
      const out = (s: string) => process.stdout.write(s);
      if (flags.format === 'json') out(JSON.stringify(toJson(name, meta, report), null, 2) + '\n');
      else {
        out(renderTable(name, meta, report));
        if (flags.tree) {
          const leaves = markLayer !== undefined ? report.marks.map((m) => ({ path: m.path, size: m.size, mark: m.mark })) : finalFiles(report.root);
          out(`\n${markLayer !== undefined ? `Layer ${markLayer} changes` : 'Filesystem'}:\n${renderTree(leaves, depth)}`);
        }
      }
      const reasons: string[] = [];
      if (maxWasted !== undefined && report.wastedBytes > maxWasted) reasons.push(`wasted bytes ${report.wastedBytes} exceed --max-wasted ${maxWasted}`);
      if (minEfficiency !== undefined && report.efficiency < minEfficiency) reasons.push(`efficiency ${report.efficiency.toFixed(4)} is below --min-efficiency ${minEfficiency}`);
      for (const r of reasons) process.stderr.write(`analyze: ${r}\n`);
      setExit(reasons.length ? 1 : 0);
    });
}

function count(v: string, flag: string): number {
  if (!/^\d+$/.test(v.trim())) throw new BuildError('USAGE', `${flag} ${JSON.stringify(v)}: expected a whole number`);
  return Number(v);
}

/** The JSON document: its field names are a contract (docs/analyze.md). */
function toJson(name: string, meta: { manifest: string; config: string; platform: string }, r: ImageAnalysis) {
  return {
    image: name,
    manifestDigest: meta.manifest,
    configDigest: meta.config,
    platform: meta.platform,
    efficiency: r.efficiency,
    wastedBytes: r.wastedBytes,
    totalBytes: r.totalBytes,
    inefficientFiles: r.inefficientFiles,
    layers: r.layers.map((l) => ({
      index: l.index,
      digest: l.digest,
      diffId: l.diffId,
      mediaType: l.mediaType,
      blobSize: l.blobSize,
      step: l.step,
      sizeBytes: l.sizeBytes,
      files: l.files,
      addedFiles: l.addedFiles,
      addedBytes: l.addedBytes,
      changedFiles: l.changedFiles,
      changedBytes: l.changedBytes,
      removedFiles: l.removedFiles,
      removedBytes: l.removedBytes,
      wastedBytes: l.wastedBytes,
    })),
    biggestFiles: r.biggestFiles,
    biggestWasted: r.biggestWasted,
  };
}

function renderTable(name: string, meta: { manifest: string; platform: string }, r: ImageAnalysis): string {
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  const filesBytes = (n: number, b: number) => (n === 0 ? '-' : `${n} (${bytes(b)})`);
  const step = (s: string) => (s.length > 60 ? s.slice(0, 59) + '…' : s);
  const head = `Image ${name} (${meta.platform}), manifest ${meta.manifest}\n\n`;
  const layers = table([
    ['#', 'SIZE', 'ADDED', 'CHANGED', 'REMOVED', 'WASTED', 'STEP'],
    ...r.layers.map((l) => [String(l.index), bytes(l.sizeBytes), filesBytes(l.addedFiles, l.addedBytes), filesBytes(l.changedFiles, l.changedBytes), filesBytes(l.removedFiles, l.removedBytes), l.wastedBytes ? bytes(l.wastedBytes) : '-', step(l.step)]),
  ]);
  const summary = `\nTotal ${bytes(r.totalBytes)} in ${r.layers.length} layers; wasted ${bytes(r.wastedBytes)} in ${r.inefficientFiles} paths; efficiency ${pct(r.efficiency)}\n`;
  const biggest = r.biggestFiles.length ? `\nBiggest files:\n${table([['SIZE', 'LAYER', 'PATH'], ...r.biggestFiles.map((f) => [bytes(f.size), String(f.layer), f.path])], '  ')}` : '';
  const wasted = r.biggestWasted.length
    ? `\nBiggest wasted:\n${table([['WASTED', 'VERSIONS', 'PATH'], ...r.biggestWasted.map((f) => [bytes(f.wastedBytes), String(f.versions), f.path + (f.removed ? ' (removed)' : '')])], '  ')}`
    : '';
  return head + layers + summary + biggest + wasted;
}

/** Columns padded to their widest cell, three spaces apart, as docker prints tables. */
function table(rows: readonly (readonly string[])[], indent = ''): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  return rows.map((row) => indent + row.map((cell, c) => (c === row.length - 1 ? cell : cell.padEnd(widths[c]! + 3))).join('').trimEnd() + '\n').join('');
}

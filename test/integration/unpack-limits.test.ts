import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { useBuildRoot } from '../helpers/build-root.js';
import { CLI } from '../helpers/cli.js';
import { tool } from '../helpers/run-tool.js';
import { manyEntriesTarGz, writeZeroBomb } from '../helpers/archive-bombs.js';
import { sha256 } from '../../src/oci/digest.js';
import { hostPlatform } from '../../src/oci/image.js';
import { MediaType } from '../../src/oci/media-types.js';

/**
 * Decompression bombs as ADD archives and as image layers fail the build with a clear error
 * naming the Dockerfile line or the layer and the [unpack] limit, without filling the disk or
 * leaving anything behind (useBuildRoot checks the store after each test).
 */
const test = suite('integration: unpack limits');
const env = useBuildRoot(test, 'unpack');
const MiB = 1024 * 1024;
const execFileP = promisify(execFile);

/** The CLI with a time bound: a hang is a failure, not a stuck test run. */
async function tsbuild(args: readonly string[]): Promise<{ code: number | null; stderr: string }> {
  try {
    const r = await execFileP(process.execPath, [CLI, ...args], { env: { ...process.env, NO_COLOR: '1' }, timeout: 120_000, maxBuffer: 16 * MiB });
    return { code: 0, stderr: r.stderr };
  } catch (e) {
    const err = e as { code?: number | string; killed?: boolean; stderr?: string };
    return { code: err.killed ? null : typeof err.code === 'number' ? err.code : null, stderr: err.stderr ?? String(e) };
  }
}

async function config(text: string): Promise<string> {
  const p = join(await mkdtemp(join(env.work, 'conf-')), 'tsbuild.toml');
  await writeFile(p, text);
  return p;
}

async function rootBytes(): Promise<number> {
  return Number((await tool('du', ['-sb', env.root])).split('\t')[0]);
}

function assertCleanFailure(r: { code: number | null; stderr: string }, message: RegExp): void {
  assert.is(r.code, 1, `exit code 1, got ${r.code}: ${r.stderr}`);
  assert.match(r.stderr, message);
  assert.not.match(r.stderr, /\n\s+at .+:\d+:\d+\)?\n/, 'no stack trace');
}

test('ADD of a 2 GiB gzip bomb fails at the limit, naming the line, the limit and the key to raise', async () => {
  const ctx = await env.context('FROM busybox\nRUN true\nADD bomb.tar.gz /x/\n');
  await writeZeroBomb(join(ctx, 'bomb.tar.gz'), 'gzip', 2048);
  const conf = await config('[unpack]\nmax-expanded-bytes = "64MiB"\n');
  const before = await rootBytes();
  const r = await tsbuild(['--config', conf, '--root', env.root, 'build', '-t', 'bomb-add', ctx]);
  assertCleanFailure(r, /Dockerfile:3: ADD bomb\.tar\.gz: the archive expands to more than 64\.0 MiB \(max-expanded-bytes\); a decompression bomb\?/);
  assert.match(r.stderr, /raise max-expanded-bytes \(now 64\.0 MiB\) in the \[unpack\] table of tsbuild\.toml/);
  assert.match(r.stderr, />>> +3 \| ADD bomb\.tar\.gz \/x\//);
  assert.ok((await rootBytes()) - before < 64 * MiB, 'the root did not grow by the expanded size');
  assert.not.match(await readFile(join(env.root, 'store/index.json'), 'utf8'), /bomb-add/, 'nothing tagged');
});

test('ADD of a bzip2 bomb is stopped by the default ratio limit well before it fills the disk', async () => {
  // 4 GiB of zeros in a few kB of bzip2: far past 100× its size, so the 1 GiB floor applies.
  const ctx = await env.context('FROM busybox\nADD bomb.tar.bz2 /x/\n');
  const size = await writeZeroBomb(join(ctx, 'bomb.tar.bz2'), 'bzip2', 4096);
  assert.ok(size < MiB, `bomb is ${size} bytes`);
  const r = await tsbuild(['--root', env.root, 'build', ctx]);
  assertCleanFailure(r, /Dockerfile:2: ADD bomb\.tar\.bz2: the archive expands to more than 1\.0 GiB \(100× its compressed size of [\d.]+ KiB\)/);
  assert.match(r.stderr, /raise max-expansion-ratio \(now 100/);
});

test('ADD of an archive with more entries than max-entries fails naming the line', async () => {
  const ctx = await env.context('FROM busybox\nADD many.tar.gz /m/\n');
  await writeFile(join(ctx, 'many.tar.gz'), manyEntriesTarGz(5000));
  const conf = await config('[unpack]\nmax-entries = 1000\n');
  const r = await tsbuild(['--config', conf, '--root', env.root, 'build', ctx]);
  assertCleanFailure(r, /Dockerfile:2: ADD many\.tar\.gz: the archive has more than 1000 entries/);
  assert.match(r.stderr, /raise max-entries \(now 1000\) in the \[unpack\] table of tsbuild\.toml/);
});

test('ADD of a truncated archive fails naming the line and the archive', async () => {
  const full = manyEntriesTarGz(2000);
  const ctx = await env.context('FROM busybox\nADD cut.tar.gz /c/\n');
  await writeFile(join(ctx, 'cut.tar.gz'), full.subarray(0, full.length >> 1));
  const r = await tsbuild(['--root', env.root, 'build', ctx]);
  assertCleanFailure(r, /Dockerfile:2: ADD cut\.tar\.gz: unexpected end of file/);
});

/** An OCI archive of a one-layer image named `name` whose layer is `layer` (gzip); the diffID is made up, as a bomb's would be. */
async function ociArchive(name: string, layer: Buffer): Promise<{ path: string; layerDigest: string }> {
  const dir = await mkdtemp(join(env.work, 'oci-'));
  const blobs = join(dir, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  const put = async (b: Buffer | string) => {
    const buf = Buffer.from(b);
    const digest = sha256(buf);
    await writeFile(join(blobs, digest.slice(7)), buf);
    return { digest, size: buf.length };
  };
  const l = await put(layer);
  const cfg = await put(JSON.stringify({ architecture: hostPlatform().architecture, os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [sha256('made up')] } }));
  const m = await put(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociManifest, config: { mediaType: MediaType.ociConfig, ...cfg }, layers: [{ mediaType: MediaType.ociLayerGzip, ...l }] }));
  await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  await writeFile(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: MediaType.ociManifest, ...m, annotations: { 'io.containerd.image.name': `docker.io/library/${name}:latest` } }] }));
  const path = `${dir}.tar`;
  await tool('tar', ['-C', dir, '-cf', path, '.']);
  await rm(dir, { recursive: true, force: true });
  return { path, layerDigest: l.digest };
}

test('a loaded image whose layer is a gzip bomb: FROM fails naming the layer digest and the limit', async () => {
  const bomb = join(env.work, 'layer.tar.gz');
  await writeZeroBomb(bomb, 'gzip', 1024);
  const { path, layerDigest } = await ociArchive('bomb-layer', await readFile(bomb));
  await rm(bomb);
  const conf = await config('[unpack]\nmax-expanded-bytes = "32MiB"\n');
  const load = await tsbuild(['--config', conf, '--root', env.root, 'load', '-i', path]);
  assert.is(load.code, 0, load.stderr);
  const ctx = await env.context('FROM bomb-layer\nRUN true\n');
  const before = await rootBytes();
  const r = await tsbuild(['--config', conf, '--root', env.root, 'build', ctx]);
  assertCleanFailure(r, new RegExp(`Dockerfile:1: layer ${layerDigest}: the archive expands to more than 32\\.0 MiB \\(max-expanded-bytes\\)`));
  assert.ok((await rootBytes()) - before < 32 * MiB, 'the root did not grow by the expanded size');
  assert.not.ok(existsSync(join(env.root, 'layers', sha256('made up').slice(7))), 'no layer committed');
  // `tsbuild export` applies the layers straight from the store: the same limit holds.
  const out = join(env.work, 'bomb-export');
  const exported = await tsbuild(['--config', conf, '--root', env.root, 'export', 'bomb-layer', '-o', out]);
  assertCleanFailure(exported, new RegExp(`layer ${layerDigest}: the archive expands to more than 32\\.0 MiB`));
  assert.ok(Number((await tool('du', ['-sb', out])).split('\t')[0]) <= 33 * MiB, 'export stopped at the limit');
  await rm(out, { recursive: true, force: true });
  await tsbuild(['--root', env.root, 'rmi', 'bomb-layer']);
});

test('a loaded image whose layer has more entries than max-entries fails naming the layer', async () => {
  const { path, layerDigest } = await ociArchive('many-layer', manyEntriesTarGz(3000));
  const conf = await config('[unpack]\nmax-entries = 500\n');
  assert.is((await tsbuild(['--root', env.root, 'load', '-i', path])).code, 0);
  const ctx = await env.context('FROM many-layer\n');
  const r = await tsbuild(['--config', conf, '--root', env.root, 'build', ctx]);
  assertCleanFailure(r, new RegExp(`layer ${layerDigest}: the archive has more than 500 entries`));
  await tsbuild(['--root', env.root, 'rmi', 'many-layer']);
});

test('a truncated gzip layer fails the build cleanly (was an unhandled gunzip error that crashed tsbuild)', async () => {
  const full = manyEntriesTarGz(2000);
  const { path, layerDigest } = await ociArchive('truncated-layer', full.subarray(0, full.length >> 1));
  assert.is((await tsbuild(['--root', env.root, 'load', '-i', path])).code, 0);
  const ctx = await env.context('FROM truncated-layer\n');
  const r = await tsbuild(['--root', env.root, 'build', ctx]);
  assertCleanFailure(r, new RegExp(`Dockerfile:1: layer ${layerDigest}: .*unexpected end of file`));
  await tsbuild(['--root', env.root, 'rmi', 'truncated-layer']);
});

test.run();

/**
 * Memory of the big-tree paths (issue 10, scope 5): the layer diff walk and the COPY tree copier
 * keep nothing per file, so what they hold at their end does not grow with the file count. Checked
 * by structure, not time: the live heap after a full GC at the walk's last entry (its deepest
 * point, all its state alive) and after a copy (the copier still referenced), for a tree of 1,000
 * files and one of 10,000. A map or list with an entry per file (a path and a digest is ~100
 * bytes) would add ~1 MB for the 9,000 extra files; the bound is 40 bytes per extra file.
 * The context checksum's results (the stat cache and the selected files, which must outlive the
 * walk) hold no heap objects per file either: they live in buffers outside the JS heap, whose
 * size the last test bounds separately, as V8 lets garbage grow with the live heap, not with those.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { writeLayerTar, type TarSink } from '../../../src/oci/layer/diff.js';
import { TreeCopier } from '../../../src/solver/ops/copy-tree.js';
import { checksumSelection } from '../../../src/solver/context-checksum.js';
import { StatCache } from '../../../src/solver/stat-cache.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const test = suite('big trees: bounded memory');
let tmp = '';
test.before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'tsbuild-big-tree-'));
});
test.after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const PER_DIR = 100;
const SMALL = 1_000;
const BIG = 10_000;
const BYTES_PER_EXTRA_FILE = 40;

/** `files` one-line files in directories of PER_DIR; returns the number of entries (dirs + files). */
function makeTree(dir: string, files: number): number {
  mkdirSync(dir);
  for (let d = 0; d < files / PER_DIR; d++) {
    mkdirSync(join(dir, `d${String(d).padStart(4, '0')}`));
    for (let f = 0; f < PER_DIR; f++) writeFileSync(join(dir, `d${String(d).padStart(4, '0')}`, `f${f}`), `${d}/${f}\n`);
  }
  return files + files / PER_DIR;
}

function liveHeap(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

async function heapAtLastEntry(dir: string, entries: number): Promise<number> {
  let seen = 0;
  let heap = 0;
  const sink: TarSink = {
    add: async (_entry, body) => {
      if (body instanceof Readable) body.resume();
      if (++seen === entries) heap = liveHeap();
    },
  };
  await writeLayerTar(dir, sink, {});
  assert.is(seen, entries);
  return heap;
}

async function heapAfterCopy(src: string, dst: string): Promise<number> {
  await mkdir(dst);
  const copier = new TreeCopier({ fromContext: true }, new AbortController().signal);
  await copier.copyContents(src, '', dst);
  const heap = liveHeap();
  assert.ok(copier); // still referenced while measured
  return heap;
}

test('the diff walk holds no per-file state', async () => {
  const small = await heapAtLastEntry(join(tmp, 'small'), makeTree(join(tmp, 'small'), SMALL));
  const big = await heapAtLastEntry(join(tmp, 'big'), makeTree(join(tmp, 'big'), BIG));
  const bound = (BIG - SMALL) * BYTES_PER_EXTRA_FILE;
  assert.ok(big - small < bound, `live heap at the last entry grew by ${big - small} bytes from ${SMALL} to ${BIG} files (bound ${bound})`);
});

test('the tree copier holds no per-file state', async () => {
  const small = await heapAfterCopy(join(tmp, 'small'), join(tmp, 'small-copy'));
  const big = await heapAfterCopy(join(tmp, 'big'), join(tmp, 'big-copy'));
  const bound = (BIG - SMALL) * BYTES_PER_EXTRA_FILE;
  assert.ok(big - small < bound, `live heap after the copy grew by ${big - small} bytes from ${SMALL} to ${BIG} files (bound ${bound})`);
});

async function heapAfterChecksum(ctx: string): Promise<{ heap: number; external: number }> {
  const stats = StatCache.memory();
  const before = process.memoryUsage().arrayBuffers;
  const sum = await checksumSelection({ root: ctx, kind: 'context' }, { srcPaths: ['.'], allowWildcard: false }, stats, new AbortController().signal);
  const heap = liveHeap();
  const external = process.memoryUsage().arrayBuffers - before;
  assert.ok(sum.files.size > 0 && stats.size > 0); // both still referenced while measured
  return { heap, external };
}

test('the context checksum and the stat cache hold no heap objects per file', async () => {
  const small = await heapAfterChecksum(join(tmp, 'small'));
  const big = await heapAfterChecksum(join(tmp, 'big'));
  const bound = (BIG - SMALL) * BYTES_PER_EXTRA_FILE;
  assert.ok(big.heap - small.heap < bound, `live heap with the checksums kept grew by ${big.heap - small.heap} bytes from ${SMALL} to ${BIG} files (bound ${bound})`);
  // Outside the heap: a path, a digest and four numbers per file, in buffers that double.
  const perFile = (big.external - small.external) / (BIG - SMALL);
  assert.ok(perFile < 400, `buffers grew by ${perFile.toFixed(0)} bytes per extra file`);
});

test.run();

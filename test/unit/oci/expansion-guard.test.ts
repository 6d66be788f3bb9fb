import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BuildError } from '../../../src/errors.js';
import { decompressStream } from '../../../src/oci/decompress.js';
import { applyLayer } from '../../../src/oci/layer/apply.js';
import { DEFAULT_EXPANSION_LIMITS, ExpansionGuard, RATIO_FREE_BYTES, type ExpansionLimits } from '../../../src/oci/layer/expansion-guard.js';
import { manyEntriesTarGz, writeZeroBomb } from '../../helpers/archive-bombs.js';

const test = suite('expansion guard');
let tmp = '';
test.before.each(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'tsbuild-guard-'));
});
test.after.each(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const MiB = 1024 * 1024;
const small: ExpansionLimits = { maxExpandedBytes: 16 * MiB, maxExpansionRatio: 100, maxEntries: 100 };

async function rejects(p: Promise<unknown>): Promise<BuildError> {
  try {
    await p;
  } catch (e) {
    if (!(e instanceof BuildError)) throw e;
    return e;
  }
  assert.unreachable('should have failed');
  throw new Error('unreachable');
}

/** Bytes of the regular files below `dir`. */
async function diskBytes(dir: string): Promise<number> {
  let n = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) n += (await stat(join(e.parentPath, e.name))).size;
  }
  return n;
}

/** Child processes of this test process (a decompressor left running would show here). */
function children(): string[] {
  try {
    return execFileSync('ps', ['-o', 'comm=', '--ppid', String(process.pid)], { encoding: 'utf8' }).split('\n').filter((c) => c && c !== 'ps');
  } catch {
    return []; // ps exits 1 when there are none
  }
}

test('the byte limit is the absolute cap or the ratio over the compressed size, never below 1 GiB', () => {
  const d = DEFAULT_EXPANSION_LIMITS;
  assert.is(new ExpansionGuard(d, 'x', 2 * MiB).byteLimit, RATIO_FREE_BYTES);
  assert.is(new ExpansionGuard(d, 'x', 100 * MiB).byteLimit, 10_000 * MiB);
  assert.is(new ExpansionGuard(d, 'x', 100 * 1024 ** 3).byteLimit, d.maxExpandedBytes);
  assert.is(new ExpansionGuard(small, 'x', 100 * MiB).byteLimit, 16 * MiB);
});

test('default limits stop a 2 GiB gzip bomb (~2 MB) while streaming, with memory bounded', async () => {
  const bomb = join(tmp, 'bomb.tar.gz');
  const size = await writeZeroBomb(bomb, 'gzip', 2048);
  assert.ok(size < 4 * MiB, `bomb is ${size} bytes`);
  const guard = new ExpansionGuard(DEFAULT_EXPANSION_LIMITS, 'ADD bomb.tar.gz', size);
  const rss = process.memoryUsage().rss;
  let seen = 0;
  const err = await rejects(
    (async () => {
      for await (const chunk of guard.wrap(await decompressStream(createReadStream(bomb)))) seen += (chunk as Buffer).length;
    })(),
  );
  assert.is(err.code, 'LIMIT_EXCEEDED');
  assert.match(err.message, /^ADD bomb\.tar\.gz: the archive expands to more than 1\.0 GiB \(100× its compressed size of 2\.\d MiB\)/);
  assert.match(err.hint ?? '', /max-expansion-ratio \(now 100; .*\) in the \[unpack\] table of tsbuild\.toml/);
  assert.ok(seen <= RATIO_FREE_BYTES, `passed on ${seen} bytes, no more than the limit`);
  assert.ok(process.memoryUsage().rss - rss < 256 * MiB, 'memory did not grow with the expansion');
});

for (const kind of ['gzip', 'bzip2', 'xz'] as const) {
  test(`a ${kind} bomb applied as an ADD archive stops at max-expanded-bytes; disk bounded, decompressor gone`, async () => {
    const bomb = join(tmp, `bomb.tar.${kind}`);
    const size = await writeZeroBomb(bomb, kind, 512);
    const dest = join(tmp, 'dest');
    await mkdir(dest);
    const guard = new ExpansionGuard(small, 'ADD bomb', size);
    const err = await rejects(applyLayer(guard.wrap(await decompressStream(createReadStream(bomb))), dest, { mode: 'flatten', onEntry: guard.countEntry }));
    assert.match(err.message, /^ADD bomb: the archive expands to more than 16\.0 MiB \(max-expanded-bytes\)/);
    assert.match(err.hint ?? '', /raise max-expanded-bytes \(now 16\.0 MiB\) in the \[unpack\] table/);
    assert.ok((await diskBytes(dest)) <= 16 * MiB, 'no more than the limit written');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(children(), [], 'the decompressor was stopped');
  });
}

test('max-entries stops an archive of many small files at the limit', async () => {
  await writeFile(join(tmp, 'many.tar.gz'), manyEntriesTarGz(1000));
  const dest = join(tmp, 'dest');
  await mkdir(dest);
  const guard = new ExpansionGuard(small, 'layer sha256:abc', 1000);
  const err = await rejects(applyLayer(guard.wrap(await decompressStream(createReadStream(join(tmp, 'many.tar.gz')))), dest, { mode: 'overlay', opaqueXattr: 'user.overlay.opaque', onEntry: guard.countEntry }));
  assert.is(err.message, 'layer sha256:abc: the archive has more than 100 entries');
  assert.match(err.hint ?? '', /raise max-entries \(now 100\) in the \[unpack\] table of tsbuild\.toml/);
  assert.is((await readdir(dest)).length, 100);
});

test('archives within the limits unpack unchanged', async () => {
  await writeFile(join(tmp, 'ok.tar.gz'), manyEntriesTarGz(100));
  const dest = join(tmp, 'dest');
  await mkdir(dest);
  const guard = new ExpansionGuard(small, 'ADD ok', 100);
  await applyLayer(guard.wrap(await decompressStream(createReadStream(join(tmp, 'ok.tar.gz')))), dest, { mode: 'flatten', onEntry: guard.countEntry });
  assert.is((await readdir(dest)).length, 100);
});

test.run();

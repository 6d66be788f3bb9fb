/**
 * TreeCopier on real temp dirs (the concurrency itself; build semantics are covered by
 * test/integration/copy-tree.test.ts) and forEachSettled, the bounded loop under it.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { lstat, mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { TreeCopier } from '../../../src/solver/ops/copy-tree.js';
import { forEachSettled } from '../../../src/solver/ops/for-each-settled.js';

const test = suite('solver: TreeCopier concurrency');
let tmp = '';
test.before.each(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'tsbuild-copy-tree-'));
});
test.after.each(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function countFiles(dir: string): Promise<number> {
  let n = 0;
  for (const e of await readdir(dir, { withFileTypes: true })) n += e.isDirectory() ? 1 + (await countFiles(join(dir, e.name))) : 1;
  return n;
}

test('forEachSettled: at most `width` in flight, in order', async () => {
  let running = 0;
  let peak = 0;
  const seen: number[] = [];
  await forEachSettled([...Array(50).keys()], 4, new AbortController().signal, async (i) => {
    seen.push(i);
    peak = Math.max(peak, ++running);
    await sleep(1);
    running--;
  });
  assert.is(peak, 4);
  assert.equal(seen, [...Array(50).keys()]);
});

test('forEachSettled: after a failure nothing new starts, started calls settle first, the failure is reported', async () => {
  const stop = new AbortController();
  const started: number[] = [];
  let settled = 0;
  const boom = new Error('boom');
  const err = await forEachSettled([...Array(100).keys()], 3, stop.signal, async (i) => {
    started.push(i);
    if (i === 5) {
      stop.abort(new Error('echo'));
      throw boom;
    }
    await sleep(20);
    if (stop.signal.aborted) {
      settled++;
      throw stop.signal.reason;
    }
    settled++;
  }).catch((e: unknown) => e);
  assert.is(err, boom, 'the cause, not the abort it triggered in siblings');
  assert.ok(started.length <= 8, `started ${started.length}`);
  assert.is(settled, started.length - 1, 'every other started call had settled');
});

test('TreeCopier: an abort mid-copy rejects, and no copy work happens after that', async () => {
  const src = join(tmp, 'src');
  for (let d = 0; d < 30; d++) {
    await mkdir(join(src, `d${d}`), { recursive: true });
    for (let f = 0; f < 100; f++) await writeFile(join(src, `d${d}/f${f}`), `${d}/${f}`);
  }
  const dst = join(tmp, 'dst');
  await mkdir(dst);
  const ac = new AbortController();
  const copying = new TreeCopier({ fromContext: true }, ac.signal).copyContents(src, '', dst);
  while ((await readdir(dst)).length < 2) await sleep(1);
  ac.abort(new Error('interrupted'));
  const err = await copying.catch((e: unknown) => e);
  assert.match(String(err), /interrupted/);
  const after = await countFiles(dst);
  assert.ok(after < 30 * 101, `stopped part-way (${after} entries)`);
  await sleep(200);
  assert.is(await countFiles(dst), after, 'nothing written after copy() rejected');
});

test('TreeCopier: a failing entry stops the copy, which rejects with that error once all started work settled', async () => {
  const src = join(tmp, 'src');
  for (let d = 0; d < 30; d++) {
    await mkdir(join(src, `d${d}`), { recursive: true });
    for (let f = 0; f < 100; f++) await writeFile(join(src, `d${d}/f${f}`), `${d}/${f}`);
  }
  const dst = join(tmp, 'dst');
  await mkdir(join(dst, 'd2'), { recursive: true });
  const stuck = join(dst, 'd2/f3');
  await writeFile(stuck, 'immutable');
  execFileSync('chattr', ['+i', stuck]); // replacing it fails, even for root
  try {
    const err = await new TreeCopier({ fromContext: true }, new AbortController().signal).copyContents(src, '', dst).catch((e: unknown) => e);
    // fs.rm reports the failed unlink of an immutable file as ENOTDIR (it retries as a directory).
    assert.ok((err as NodeJS.ErrnoException).code !== undefined && String(err).includes('d2/f3'), `the failing entry's own error: ${String(err)}`);
    const after = await countFiles(dst);
    await sleep(200);
    assert.is(await countFiles(dst), after, 'nothing written after copy() rejected');
  } finally {
    execFileSync('chattr', ['-i', stuck]);
  }
});

test('TreeCopier: a whole tree arrives, directories before children and finished after them', async () => {
  const src = join(tmp, 'src');
  for (let d = 0; d < 10; d++) {
    await mkdir(join(src, `a/d${d}/deeper`), { recursive: true });
    for (let f = 0; f < 50; f++) await writeFile(join(src, `a/d${d}/deeper/f${f}`), 'x');
  }
  const old = new Date('2001-02-03T04:05:06Z');
  for (let d = 0; d < 10; d++) await utimes(join(src, `a/d${d}/deeper`), old, old);
  const dst = join(tmp, 'dst');
  assert.ok(await new TreeCopier({ fromContext: false }, new AbortController().signal).copy(join(src, 'a'), '', dst));
  assert.is(await countFiles(dst), 10 * 52);
  for (let d = 0; d < 10; d++) assert.is((await lstat(join(dst, `d${d}/deeper`))).mtimeMs, old.getTime(), 'mtime set after the children were added');
});

test.run();

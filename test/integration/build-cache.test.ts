import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { useBuildRoot } from '../helpers/build-root.js';
import { tsbuild, tsbuildOk } from '../helpers/cli.js';
import type { ProgressEvent } from '../../schemas/types/progress-event.js';
import { cached, explained, rawjsonEvents, started } from '../helpers/progress-events.js';

/**
 * The persistent cache with real builds: every tsbuild call is its own process, so each hit
 * here is a hit across processes. What ran is read from the rawjson progress stream: a RUN that
 * ran has a `vertex.start`, one served from the cache only a `vertex.cached`.
 */
const test = suite('integration/build-cache');
const env = useBuildRoot(test, 'cache');

type Events = ProgressEvent[];

async function build(ctx: string, extra: string[] = []): Promise<Events> {
  return rawjsonEvents((await tsbuildOk(['--root', env.root, 'build', '--progress', 'rawjson', ...extra, ctx])).stderr);
}

const DOCKERFILE = `FROM busybox
ARG V=1
COPY a.txt /a.txt
RUN echo "run $V" >> /log
COPY b.txt /b.txt
RUN cat /b.txt >> /log
`;

test('rebuild: every step CACHED, nothing runs; one file touched: only the steps from its COPY on', async () => {
  const ctx = await env.context(DOCKERFILE, { 'a.txt': 'A', 'b.txt': 'B' });
  const first = await build(ctx, ['-t', 'c1']);
  assert.is(started(first).filter((n) => / (RUN|COPY) /.test(n)).length, 4);
  const again = await build(ctx, ['-t', 'c1']);
  assert.equal(started(again), [], 'nothing ran');
  assert.is(cached(again).length, 5, 'FROM + 4 steps cached');
  // mtime alone (touch) changes nothing.
  const t = new Date();
  await import('node:fs/promises').then((f) => f.utimes(join(ctx, 'a.txt'), t, t));
  assert.equal(started(await build(ctx, ['-t', 'c1'])), [], 'touch without change keeps the cache');
  await writeFile(join(ctx, 'b.txt'), 'B2');
  const touched = await build(ctx, ['-t', 'c1']);
  assert.equal(started(touched), ['[4/5] COPY b.txt /b.txt', '[5/5] RUN cat /b.txt >> /log']);
  // Step names show ARG values, as BuildKit's (processCmdEnv).
  assert.ok(cached(touched).includes('[3/5] RUN echo "run 1" >> /log'));
  const x = explained(touched, 'COPY b.txt');
  assert.is(x?.reason, 'file');
  assert.equal(x?.files?.map((f) => f.path), ['b.txt']);
  assert.ok(x?.files?.[0]?.old && x.files[0].new && x.files[0].old !== x.files[0].new, 'old and new checksums');
  assert.is(explained(touched, 'RUN cat')?.reason, 'parent');
});

test('the stat cache of a big context (a file read as a stream) answers a no-op rebuild: nothing hashed, the cache not rewritten', async () => {
  // 3,000 files: a stat cache file of ~400 KB, read line by line rather than at once.
  const files: Record<string, string> = {};
  for (let i = 0; i < 3000; i++) files[`tree/d${i % 30}/f${i}`] = `${i}\n`;
  const ctx = await env.context('FROM busybox\nCOPY tree /tree\n', files);
  await tsbuildOk(['--root', env.root, 'build', ctx]);
  // Files younger than the stat cache's racy window are hashed again: let them age.
  await new Promise((r) => setTimeout(r, 300));
  await tsbuildOk(['--root', env.root, 'build', ctx]);
  const dir = join(env.root, 'cache/stat');
  const sizes = await Promise.all((await readdir(dir)).map(async (n) => [n, (await stat(join(dir, n))).size, (await stat(join(dir, n))).mtimeMs] as const));
  const big = sizes.find(([, size]) => size > 256 * 1024);
  assert.ok(big, `a stat cache file over 256 KiB: ${JSON.stringify(sizes)}`);
  await tsbuildOk(['--root', env.root, 'build', ctx]);
  assert.is((await stat(join(dir, big[0]))).mtimeMs, big[2], 'a no-op rebuild found every file in the cache, so it did not save it again');
});

test('explain reasons: build arg, command, new step, no-cache, pruned; --explain prints them in plain mode', async () => {
  const ctx = await env.context(DOCKERFILE, { 'a.txt': 'A', 'b.txt': 'B' });
  await build(ctx, ['-t', 'c2']);
  const arg = await build(ctx, ['--build-arg', 'V=2']);
  const ax = explained(arg, 'RUN echo');
  assert.is(ax?.reason, 'env');
  assert.equal(ax?.vars, [{ name: 'V', old: '1', new: '2' }]);
  assert.equal(started(arg), ['[3/5] RUN echo "run 2" >> /log', '[4/5] COPY b.txt /b.txt', '[5/5] RUN cat /b.txt >> /log']);

  assert.equal(started(await build(ctx)), [], 'back to V=1: cached again');
  await writeFile(join(ctx, 'Dockerfile'), DOCKERFILE.replace('cat /b.txt', 'cat /b.txt /a.txt'));
  assert.is(explained(await build(ctx), 'RUN cat')?.reason, 'command');
  await writeFile(join(ctx, 'Dockerfile'), DOCKERFILE + 'RUN echo extra\n');
  assert.is(explained(await build(ctx), 'RUN echo extra')?.reason, 'new');
  const noCache = await build(ctx, ['--no-cache']);
  assert.is(explained(noCache, 'COPY a.txt')?.reason, 'no-cache');
  assert.is(explained(noCache, 'RUN echo extra')?.reason, 'parent');

  await rm(join(env.root, 'cache', 'records'), { recursive: true, force: true });
  assert.is(explained(await build(ctx), 'COPY a.txt')?.reason, 'pruned');

  await writeFile(join(ctx, 'a.txt'), 'A2');
  const plain = await tsbuildOk(['--root', env.root, 'build', '--explain', '--progress', 'plain', ctx]);
  assert.match(plain.stderr, /EXPLAIN \[2\/6\] COPY a\.txt \/a\.txt: file: files changed: a\.txt \(sha256:[0-9a-f]{64} → sha256:[0-9a-f]{64}\)/);
  assert.match(plain.stderr, /EXPLAIN \[3\/6\] RUN echo "run 1" >> \/log: parent: /);
});

test('--no-cache reruns everything; --no-cache-filter only the named stage and what depends on it', async () => {
  // deps writes something new every run, so what copies from it must rerun too (a stage that
  // reruns to the same files keeps its dependents cached: copy-from-cache.test.ts).
  const ctx = await env.context(`FROM busybox AS deps
RUN cat /proc/sys/kernel/random/uuid > /deps
FROM busybox AS tools
RUN echo tools > /tools
FROM busybox
COPY --from=deps /deps /deps
COPY --from=tools /tools /tools
RUN cat /deps /tools
`);
  await build(ctx);
  const all = await build(ctx, ['--no-cache']);
  assert.is(started(all).filter((n) => / (RUN|COPY) /.test(n)).length, 5);
  const filtered = started(await build(ctx, ['--no-cache-filter', 'deps']));
  assert.ok(filtered.includes('[deps 2/2] RUN cat /proc/sys/kernel/random/uuid > /deps'));
  assert.not.ok(filtered.some((n) => n.startsWith('[tools')), 'other stage stays cached');
  assert.ok(filtered.includes('[stage-2 4/4] RUN cat /deps /tools'), 'dependents rerun');
});

test('a cache record whose layer dir is gone unpacks it again from the layer\'s blob; with the blob gone too it is a miss, removed, and the build still works', async () => {
  const ctx = await env.context('FROM busybox\nRUN echo layer-gone > /f\n');
  await build(ctx, ['-t', 'c4']);
  // Lose the RUN's layer behind the cache's back (as a crash in the middle of a prune could).
  const layers = await readdir(join(env.root, 'layers'));
  const runLayer = [];
  for (const l of layers) {
    const files = await readdir(join(env.root, 'layers', l, 'diff')).catch(() => [] as string[]);
    if (files.length === 1 && files[0] === 'f') runLayer.push(l);
  }
  assert.is(runLayer.length, 1);
  await rm(join(env.root, 'layers', runLayer[0]!), { recursive: true });
  // What a crash recovery leaves (unsynced-layers.ts): the layer's uncompressed blob, named by its diffID, brings it back.
  const back = await build(ctx, ['-t', 'c4']);
  assert.equal(started(back), [], 'unpacked again from its blob, not rebuilt');
  assert.equal(await readdir(join(env.root, 'layers', runLayer[0]!, 'diff')), ['f']);
  await rm(join(env.root, 'layers', runLayer[0]!), { recursive: true });
  await rm(join(env.root, 'store', 'blobs', 'sha256', runLayer[0]!));
  const ev = await build(ctx, ['-t', 'c4']);
  assert.equal(started(ev), ['[2/2] RUN echo layer-gone > /f'], 'rebuilt instead of handing out a missing layer');
  assert.is(explained(ev, 'RUN echo layer-gone')?.reason, 'pruned');
});

test('two builds on one root at once share the cache without corruption', async () => {
  const df = (n: number) => `FROM busybox\nRUN echo shared > /s\nRUN echo own-${n} > /o\nCOPY f /f\n`;
  const a = await env.context(df(1), { f: 'one' });
  const b = await env.context(df(2), { f: 'two' });
  const [ra, rb] = await Promise.all([
    tsbuild(['--root', env.root, 'build', '-t', 'pa', a]),
    tsbuild(['--root', env.root, 'build', '-t', 'pb', b]),
  ]);
  assert.is(ra.code, 0, ra.stderr);
  assert.is(rb.code, 0, rb.stderr);
  // Both are fully cached afterwards, in either process.
  assert.equal(started(await build(a, ['-t', 'pa'])), []);
  assert.equal(started(await build(b, ['-t', 'pb'])), []);
});

test.run();

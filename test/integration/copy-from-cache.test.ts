import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { useBuildRoot } from '../helpers/build-root.js';
import { tsbuildOk } from '../helpers/cli.js';
import { cached, explained, rawjsonEvents, started } from '../helpers/progress-events.js';

/**
 * COPY --from and RUN --mount=from are keyed by the content they select from the source stage,
 * as BuildKit's content-based cache keys: a stage rebuilt to the same files keeps what copies
 * from it cached. Real builds, each a separate process; what ran is read from rawjson progress.
 */
const test = suite('integration/copy-from-cache');
const env = useBuildRoot(test, 'copyfrom');

const build = async (ctx: string, extra: string[] = []) =>
  rawjsonEvents((await tsbuildOk(['--root', env.root, 'build', '--progress', 'rawjson', ...extra, ctx])).stderr);
const run = async (image: string, cmd: string) => (await tsbuildOk(['--root', env.root, 'run', image, '--', 'sh', '-c', cmd])).stdout;

// The builder reads the whole context, so any context change reruns it; only keep.txt reaches /out.
const DOCKERFILE = `FROM busybox AS builder
COPY . /src
RUN mkdir /out && cp /src/keep.txt /out/keep.txt && wc -c /src/other.txt > /src-size
FROM busybox
COPY --from=builder /out /out
RUN cat /out/keep.txt > /copied
`;

test('a rebuilt stage with the same output: COPY --from and what follows stay CACHED', async () => {
  const ctx = await env.context(DOCKERFILE, { 'keep.txt': 'K1', 'other.txt': 'O1' });
  await build(ctx, ['-t', 'cf1']);
  await writeFile(join(ctx, 'other.txt'), 'O2 longer');
  const ev = await build(ctx, ['-t', 'cf1']);
  assert.equal(started(ev), ['[builder 2/3] COPY . /src', '[builder 3/3] RUN mkdir /out && cp /src/keep.txt /out/keep.txt && wc -c /src/other.txt > /src-size']);
  assert.ok(cached(ev).includes('[stage-1 2/3] COPY --from=builder /out /out'), 'COPY --from found by content');
  assert.ok(cached(ev).includes('[stage-1 3/3] RUN cat /out/keep.txt > /copied'), 'and the step below it');
  assert.is(await run('cf1', 'cat /copied'), 'K1');

  // Now the copied file changes: the COPY misses, and --explain names the file in the stage.
  await writeFile(join(ctx, 'keep.txt'), 'K2');
  const changed = await build(ctx, ['-t', 'cf1']);
  assert.ok(started(changed).includes('[stage-1 2/3] COPY --from=builder /out /out'));
  const x = explained(changed, 'COPY --from=builder');
  assert.is(x?.reason, 'file');
  assert.equal(x?.files?.map((f) => f.path), ['out/keep.txt']);
  assert.is(explained(changed, 'RUN cat /out/keep.txt')?.reason, 'parent');
  assert.is(await run('cf1', 'cat /copied'), 'K2', 'no stale hit');
});

test('a no-op rebuild reads the copied selection from the memo, and prune drops entries of removed layers', async () => {
  const ctx = await env.context(DOCKERFILE.replace('RUN cat /out/keep.txt > /copied', 'RUN cat /out/keep.txt > /copied2'), { 'keep.txt': 'M', 'other.txt': 'M' });
  const memo = join(env.root, 'cache', 'selections');
  const before = new Set(await readdir(memo).catch(() => [] as string[]));
  await build(ctx);
  const made = (await readdir(memo)).filter((n) => !before.has(n));
  assert.is(made.length, 1, 'one selection checksummed');
  const entry = JSON.parse(await readFile(join(memo, made[0]!), 'utf8')) as { files: [string, string][] };
  assert.equal(entry.files.map((f) => f[0]), ['out', 'out/keep.txt']);
  const again = await build(ctx);
  assert.equal(started(again), [], 'nothing ran');
  // Make the entry's answer wrong: if a rebuild still checksummed the source, the key would
  // stay right and the COPY would hit; reading the memo, the key moves and the COPY runs.
  const planted = { ...JSON.parse(await readFile(join(memo, made[0]!), 'utf8')), digest: `sha256:${'0'.repeat(64)}` };
  await writeFile(join(memo, made[0]!), JSON.stringify(planted));
  assert.ok(started(await build(ctx)).some((n) => n.includes('COPY --from=builder')), 'the memo, not a mount, gave the key');

  await tsbuildOk(['--root', env.root, 'prune', '--all']);
  const layers = new Set(await readdir(join(env.root, 'layers')));
  for (const name of await readdir(memo)) {
    const kept = JSON.parse(await readFile(join(memo, name), 'utf8')) as { layers: string[] };
    assert.ok(kept.layers.every((d) => layers.has(d.slice('sha256:'.length))), `${name} names only present layers`);
  }
  assert.not.ok((await readdir(memo)).includes(made[0]!), 'the builder chain is gone, so is its entry');
});

test('RUN --mount=from a rebuilt stage with the same files stays CACHED; --no-cache-filter reruns only the stage', async () => {
  const ctx = await env.context(
    `FROM busybox AS builder
COPY . /src
RUN mkdir /out && cp /src/keep.txt /out/ && wc -c /src/other.txt > /size
FROM busybox
RUN --mount=type=bind,from=builder,source=/out,target=/m cat /m/keep.txt > /seen
`,
    { 'keep.txt': 'B1', 'other.txt': 'x' },
  );
  await build(ctx, ['-t', 'cf3']);
  await writeFile(join(ctx, 'other.txt'), 'xyz');
  const ev = await build(ctx, ['-t', 'cf3']);
  assert.ok(started(ev).some((n) => n.startsWith('[builder 3/3] RUN')));
  assert.ok(cached(ev).some((n) => n.startsWith('[stage-1 2/2] RUN --mount')), 'the bind mount is keyed by its content');
  const filtered = await build(ctx, ['-t', 'cf3', '--no-cache-filter', 'builder']);
  assert.ok(started(filtered).some((n) => n.startsWith('[builder 3/3] RUN')), 'the filtered stage reruns');
  assert.not.ok(started(filtered).some((n) => n.startsWith('[stage-1')), 'its dependents do not: same files');
  await writeFile(join(ctx, 'keep.txt'), 'B2');
  assert.ok(started(await build(ctx, ['-t', 'cf3'])).some((n) => n.startsWith('[stage-1 2/2] RUN --mount')));
  assert.is(await run('cf3', 'cat /seen'), 'B2');
});

test.run();

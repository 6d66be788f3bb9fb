import { suite } from 'uvu';
import { existsSync } from 'node:fs';
import * as assert from 'uvu/assert';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { useBuildRoot } from '../helpers/build-root.js';
import { tsbuild, tsbuildOk } from '../helpers/cli.js';
import { diskUsage, prune } from '../../src/orchestrator/gc.js';
import { registerBuild } from '../../src/orchestrator/build-registry.js';
import { rootDirs } from '../../src/root-dirs.js';
import { parseByteSize } from '../../src/byte-size.js';

const test = suite('integration/gc');
const env = useBuildRoot(test, 'gc');

const records = async () => (await readdir(join(env.root, 'cache', 'records')).catch(() => [] as string[])).length;
const ranRun = (stderr: string) => /#\d+ \[[^\]]*\] RUN[^\n]*\n(#\d+ [\d.]+ [^\n]*\n)*#\d+ DONE/.test(stderr);

test('prune keeps what images use, drops dangling cache; --all drops all cache; images still build and export', async () => {
  const ctx = await env.context('FROM busybox AS b\nRUN echo tmp > /t && echo big > /not-copied\nFROM busybox\nCOPY --from=b /t /t\nRUN echo keep > /k\n');
  await tsbuildOk(['--root', env.root, 'build', '-t', 'gc1', ctx]);
  const before = await diskUsage(env.root);
  assert.ok(before.cacheRecords >= 3);
  const du = await tsbuildOk(['--root', env.root, 'du']);
  assert.match(du.stdout, /cache records\t\d+/);

  // The build stage's RUN layer is only in the cache: a plain prune drops it.
  const r = await prune(env.root);
  assert.ok(r.records >= 1 && r.layers >= 1, JSON.stringify(r));
  const after = await diskUsage(env.root);
  assert.is(after.danglingBytes, 0);
  assert.ok(after.layers.count < before.layers.count);
  // The final stage's steps are in the image: still cached.
  const again = await tsbuildOk(['--root', env.root, 'build', '--progress', 'plain', '--target', 'b', ctx]);
  assert.ok(ranRun(again.stderr), 'pruned stage reruns');

  const all = await tsbuildOk(['--root', env.root, 'prune', '--all']);
  assert.match(all.stdout, /removed \d+ cache records/);
  assert.is(await records(), 0);
  for (const d of ['steps', 'stat', 'mounts']) assert.not.ok(existsSync(join(env.root, 'cache', d)), `--all also clears cache/${d}`);
  // The tagged image is intact: it can be exported, and FROM it still works.
  await tsbuildOk(['--root', env.root, 'build', '-t', 'gc2', await env.context('FROM gc1\nRUN cat /k /t\n')]);
});

test('--keep-storage keeps the most recently used cache within the budget; --filter until= spares recent cache', async () => {
  for (let i = 0; i < 3; i++) {
    await tsbuildOk(['--root', env.root, 'build', await env.context(`FROM busybox\nRUN dd if=/dev/zero of=/f bs=1024 count=${100 + i} 2>/dev/null\n`)]);
  }
  const n = await records();
  assert.ok(n >= 3);
  await tsbuildOk(['--root', env.root, 'prune', '--filter', 'until=1h']);
  assert.is(await records(), n, 'nothing is older than an hour');
  const r = await prune(env.root, { keepStorage: parseByteSize('150KB') });
  assert.ok(r.records >= 2, `kept at most one 100 KiB layer: ${JSON.stringify(r)}`);
  assert.ok((await diskUsage(env.root)).cacheOnlyBytes <= 150 * 1024);
  assert.is((await tsbuild(['--root', env.root, 'prune', '--keep-storage', 'lots'])).code, 2);
});

test('the [gc] policy of tsbuild.toml is applied after every build, and is prune\'s default', async () => {
  const config = join(env.work, 'gc.toml');
  await writeFile(config, '[gc]\nkeep-storage = "0"\n');
  // The stage writes /y too: its layer differs from the COPY's (which may otherwise be the same tar, diffID and all).
  const ctx = await env.context('FROM busybox AS scratchpad\nRUN echo only-in-cache > /x && echo stage > /y\nFROM busybox\nCOPY --from=scratchpad /x /x\n');
  await tsbuildOk(['--root', env.root, 'build', '-t', 'gc-policy', ctx]);
  const kept = await diskUsage(env.root);
  assert.ok(kept.cacheOnlyBytes > 0 || kept.danglingBytes > 0, 'without a policy the stage layer stays cached');
  const r = await tsbuildOk(['--root', env.root, '--config', config, 'build', '-t', 'gc-policy', ctx]);
  assert.match(r.stderr, /gc policy: reclaimed/);
  const after = await diskUsage(env.root);
  assert.is(after.danglingBytes + after.cacheOnlyBytes, 0, 'keep-storage = 0 keeps no cache-only layer');
  const image = await tsbuildOk(['--root', env.root, 'export', 'gc-policy', '-o', join(env.work, 'gc-policy-out')]);
  assert.is(image.code, 0, 'the image itself is untouched');
});

test('prune refuses while a build runs on the root', async () => {
  const reg = await registerBuild(rootDirs(env.root));
  try {
    // Registered by this (live) test process: from another process, a build is running.
    const r = await tsbuild(['--root', env.root, 'prune']);
    assert.match(r.stderr, /a build is running/);
    assert.is(r.code, 2, r.stderr);
  } finally {
    await reg.release();
  }
});

test.run();

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { chmod, lchown, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ImageLayout } from '../../../src/oci/image-layout.js';
import { exportOciLayout } from '../../../src/exporter/oci-layout.js';
import { exportLocal } from '../../../src/exporter/local.js';
import { nullSink } from '../../../src/events.js';
import type { Ctx } from '../../../src/ctx.js';
import { makeHandMadeImage, type HandMadeImage } from '../../helpers/hand-made-image.js';
import { diffTrees, snapshotTree } from '../../helpers/tree-compare.js';

const run = promisify(execFile);
const test = suite('exportLocal (compared with umoci unpack)');
const ctx: Ctx = { signal: new AbortController().signal, events: nullSink };
let dir = '';
let store: ImageLayout;
let img: HandMadeImage;

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tsbuild-local-'));
  store = await ImageLayout.open(join(dir, 'store'), { create: true, tmpDir: join(dir, 'tmp') });
  img = await makeHandMadeImage(store, 'docker.io/library/hello:latest');
});
test.after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('exportLocal gives the same tree as umoci unpack, file by file', async () => {
  const layout = join(dir, 'layout2');
  await exportOciLayout(store.blobs, img.manifest, layout, ['hello:latest'], ctx);
  const bundle = join(dir, 'bundle2');
  await run('umoci', ['unpack', '--image', `${layout}:latest`, bundle]);
  const ours = join(dir, 'local');
  await exportLocal(store.blobs, img.manifest, ours, ctx);
  const a = await snapshotTree(join(bundle, 'rootfs'));
  const b = await snapshotTree(ours);
  assert.ok(a.size > 250, 'busybox rootfs has its applet links');
  // The root's own mode/owner depends on how each tool created the directory.
  const diffs = diffTrees(a, b, (p) => p === '.');
  assert.equal(diffs, [], diffs.slice(0, 20).join('\n'));
  // Hardlinked files share content (and umoci keeps them as links too).
  assert.is(await readFile(join(ours, 'etc', 'motd.link'), 'utf8'), 'hello from layer 2\n');
  // The comparison is sharp: one changed mode, owner, content or missing file is reported.
  await chmod(join(ours, 'etc', 'passwd'), 0o600);
  await lchown(join(ours, 'bin', 'motd'), 5, 5);
  await writeFile(join(ours, 'var', 'new'), 'stale\n');
  await rm(join(ours, 'bin', 'ls'));
  const after = diffTrees(a, await snapshotTree(ours), (p) => p === '.');
  assert.equal(after.map((l) => l.replace(/sha256 \w+ != \w+/, 'sha256 differs')).sort(), [
    'bin/motd: gid 0 != 5',
    'bin/motd: uid 0 != 5',
    'etc/passwd: mode 644 != 600',
    'only in a: bin/ls',
    'var/new: sha256 differs',
  ]);
});

test.run();

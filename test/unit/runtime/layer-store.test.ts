import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { sha256 } from '../../../src/oci/digest.js';
import type { Descriptor } from '../../../src/oci/image.js';
import { makeRoot } from './fixture.js';

const test = suite('LayerStore');

async function filledDir(parent: string, content: string): Promise<string> {
  const d = await mkdtemp(join(parent, 'src-'));
  await mkdir(join(d, 'etc'));
  await writeFile(join(d, 'etc/file'), content);
  return d;
}

test('commit moves the dir into place with link, blob.json and committed', async () => {
  const root = await makeRoot();
  try {
    const diffId = sha256('layer-a');
    const blob: Descriptor = { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256('blob-a'), size: 42 };
    assert.is(await root.store.has(diffId), false);
    assert.is(await root.store.blob(diffId), undefined);
    const src = await filledDir(root.dirs.tmp, 'a');
    await root.store.commit(src, diffId, { blob });

    assert.is(await root.store.has(diffId), true);
    await lstat(src).then(() => assert.unreachable('src should be gone'), () => undefined);
    assert.is(await readFile(join(root.store.dir(diffId), 'etc/file'), 'utf8'), 'a');
    assert.equal(await root.store.blob(diffId), blob);
    const short = await root.store.shortLink(diffId);
    assert.match(short, /^l\/[A-Z0-9]{26}$/);
    // The short link resolves (relative to the root) to the layer's diff dir.
    assert.is(await readlink(join(root.dirs.root, short)), `../layers/${diffId.slice(7)}/diff`);
    assert.is(await readFile(join(root.dirs.root, short, 'etc/file'), 'utf8'), 'a');
    // No staging leftovers.
    assert.equal((await readdir(root.dirs.layers)).sort(), [diffId.slice(7)]);
  } finally {
    await root.dispose();
  }
});

test('concurrent commits of the same diffId: one wins, the other is discarded, both succeed', async () => {
  const root = await makeRoot();
  try {
    const diffId = sha256('layer-b');
    const srcs = await Promise.all([1, 2, 3, 4].map((i) => filledDir(root.dirs.tmp, `b${i}`)));
    await Promise.all(srcs.map((s) => root.store.commit(s, diffId, {})));
    assert.is(await root.store.has(diffId), true);
    assert.match(await readFile(join(root.store.dir(diffId), 'etc/file'), 'utf8'), /^b[1-4]$/);
    assert.equal(await readdir(root.dirs.layers), [diffId.slice(7)]);
    assert.is((await readdir(root.dirs.links)).length, 1, 'losers remove their short links');
    assert.is((await readdir(root.dirs.tmp)).length, 0, 'losers remove their source dirs');
  } finally {
    await root.dispose();
  }
});

test('shortLink of a missing layer throws', async () => {
  const root = await makeRoot();
  try {
    await root.store.shortLink(sha256('nope')).then(
      () => assert.unreachable('should throw'),
      (e: unknown) => assert.match(String(e), 'not in the layer store'),
    );
  } finally {
    await root.dispose();
  }
});

test.run();

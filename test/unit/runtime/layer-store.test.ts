import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { sha256 } from '../../../src/oci/digest.js';
import type { Descriptor } from '../../../src/oci/image.js';
import { makeRoot } from './fixture.js';
import { LayerStore } from '../../../src/runtime/layer-store.js';
import { currentBootId } from '../../../src/runtime/unsynced-layers.js';

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
    // No staging leftovers; the marker of this boot (see the tests below).
    assert.equal((await readdir(root.dirs.layers)).sort(), ['.unsynced', diffId.slice(7)]);
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
    assert.equal((await readdir(root.dirs.layers)).filter((n) => !n.startsWith('.')), [diffId.slice(7)]);
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

test('the first commit of a boot leaves a synced marker of that boot; later commits keep it as it is', async () => {
  const root = await makeRoot();
  try {
    const marker = join(root.dirs.layers, '.unsynced');
    await root.store.commit(await filledDir(root.dirs.tmp, 'a'), sha256('m-a'), {});
    const text = await readFile(marker, 'utf8');
    const [boot, since] = text.trim().split(' ');
    assert.is(boot, currentBootId());
    assert.ok(Number(since) <= Date.now() && Number(since) > Date.now() - 2 * 3600_000, 'a time before the layer, with a margin for clock steps');
    const before = await stat(marker);
    await root.store.commit(await filledDir(root.dirs.tmp, 'b'), sha256('m-b'), {});
    assert.is(await readFile(marker, 'utf8'), text);
    assert.is((await stat(marker)).ino, before.ino);
  } finally {
    await root.dispose();
  }
});

test('opened in another boot, the store removes the layers committed since the marker, their short links and the marker', async () => {
  const root = await makeRoot();
  try {
    const old = sha256('old'), fresh = sha256('fresh');
    await root.store.commit(await filledDir(root.dirs.tmp, 'old'), old, {});
    // Milliseconds apart, so that a whole-millisecond marker time falls between the two.
    await new Promise((r) => setTimeout(r, 20));
    await root.store.commit(await filledDir(root.dirs.tmp, 'fresh'), fresh, {});
    const marker = join(root.dirs.layers, '.unsynced');
    // `old` as committed before the marker's time: kept. `fresh` after it: removed.
    const oldCtime = (await stat(join(root.dirs.layers, old.slice(7), 'committed'))).ctimeMs;
    const freshCtime = (await stat(join(root.dirs.layers, fresh.slice(7), 'committed'))).ctimeMs;
    await writeFile(marker, `boot-before ${Math.floor((oldCtime + freshCtime) / 2) || Math.floor(freshCtime)}\n`);
    if (freshCtime <= oldCtime) {
      // Both within one clock tick: every layer since the marker goes, which must include `fresh`.
      await writeFile(marker, `boot-before ${Math.floor(freshCtime)}\n`);
    }
    const reopened = await LayerStore.open(root.dirs);
    assert.is(await reopened.has(fresh), false);
    assert.is(await reopened.has(old), freshCtime > oldCtime, 'a layer from before the marker stays');
    assert.is((await lstat(marker).catch(() => undefined)) === undefined, true, 'the marker goes once the layers are gone');
    const links = await readdir(root.dirs.links);
    assert.is(links.length, freshCtime > oldCtime ? 1 : 0, 'the removed layer\'s short link goes too');
    assert.equal((await readdir(root.dirs.layers)).filter((n) => n.startsWith('.tmp')), []);
    // The next commit of this boot marks again.
    await reopened.commit(await filledDir(root.dirs.tmp, 'again'), fresh, {});
    assert.match(await readFile(marker, 'utf8'), new RegExp(`^${currentBootId()} `));
  } finally {
    await root.dispose();
  }
});

test('a torn marker of another boot counts from the epoch; a store made without open() refuses to commit past another boot\'s marker', async () => {
  const root = await makeRoot();
  try {
    await root.store.commit(await filledDir(root.dirs.tmp, 'x'), sha256('x'), {});
    const marker = join(root.dirs.layers, '.unsynced');
    await writeFile(marker, 'garb');
    const other = new LayerStore(root.dirs);
    await other.commit(await filledDir(root.dirs.tmp, 'y'), sha256('y'), {}).then(
      () => assert.unreachable('commit past a foreign marker'),
      (e: Error) => assert.match(e.message, 'another boot'),
    );
    const opened = await Promise.all([LayerStore.open(root.dirs), LayerStore.open(root.dirs)]);
    assert.is(await opened[0].has(sha256('x')), false, 'everything since the epoch');
    assert.equal(await readdir(root.dirs.layers), ['.recovered-times.json']);
    const times = JSON.parse(await readFile(join(root.dirs.layers, '.recovered-times.json'), 'utf8')) as Record<string, number>;
    assert.equal(Object.keys(times), [sha256('x').slice(7)], 'the time the removed layer was made, for when it is unpacked again');
    // Unpacked again, it gets that time back.
    await opened[0].commit(await filledDir(root.dirs.tmp, 'x'), sha256('x'), {});
    assert.is((await opened[0].createdAt(sha256('x'))).getTime(), Math.floor(times[sha256('x').slice(7)]!));
  } finally {
    await root.dispose();
  }
});

test.run();

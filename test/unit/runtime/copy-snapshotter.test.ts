import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { sha256 } from '../../../src/oci/digest.js';
import { copiesDir, CopySnapshotter } from '../../../src/runtime/copy-snapshotter.js';
import { busyboxLayer, makeRoot, testCtx } from './fixture.js';

/** The copy snapshotter's life cycle: materialize, keep an upper, reuse the working dir, share read-only trees, clean up. */
const test = suite('copy snapshotter');

if (process.getuid?.() !== 0) {
  test('skipped: not root', () => {});
} else {
  test('a kept upper committed as the next layer hands its working dir to the next step; nothing left after close', async () => {
    const root = await makeRoot();
    const snaps = new CopySnapshotter(root.store, root.dirs);
    try {
      const l0 = await busyboxLayer(root);
      const a = await snaps.prepare([l0], {}, testCtx());
      assert.ok((await readdir(join(a.merged, 'bin'))).includes('busybox'));
      await writeFile(join(a.merged, 'step1'), 'one');
      const upper = a.keepUpper();
      await a.release();
      assert.equal(await readdir(upper), ['step1'], 'the upper holds only the change');
      const l1 = sha256('step1-layer');
      await root.store.commit(upper, l1, {});

      const b = await snaps.prepare([l0, l1], {}, testCtx());
      assert.is(b.id, a.id, 'the same working dir, not a new copy');
      assert.is(await readFile(join(b.merged, 'step1'), 'utf8'), 'one');
      await writeFile(join(b.merged, 'step2'), 'two');
      const upper2 = b.keepUpper();
      await b.release();
      assert.equal(await readdir(upper2), ['step2'], 'the adopted manifest knows step1 already');

      // A chain that does not end in the kept layer gets a fresh copy.
      const c = await snaps.prepare([l0], {}, testCtx());
      assert.is.not(c.id, a.id);
      await c.release();

      // Read-only snapshots of one chain share one tree.
      const r1 = await snaps.prepare([l0, l1], { readonly: true }, testCtx());
      const r2 = await snaps.prepare([l0, l1], { readonly: true }, testCtx());
      assert.is(r1.merged, r2.merged);
      assert.throws(() => r1.keepUpper());
      await r1.release();
      await r2.release();
      await snaps.close();
      assert.equal(await readdir(copiesDir(root.dirs)), [], 'pool and shared trees removed');
    } finally {
      await snaps.close();
      await root.dispose();
    }
  });

  test('cleanupStale removes working dirs of dead processes only', async () => {
    const root = await makeRoot();
    const snaps = new CopySnapshotter(root.store, root.dirs);
    try {
      const l0 = await busyboxLayer(root);
      const live = await snaps.prepare([l0], {}, testCtx());
      const dead = join(copiesDir(root.dirs), 'deadbeef');
      await mkdir(join(dead, 'root'), { recursive: true });
      // pid 1 never started at tick 1 and again: no live process has this owner token.
      await writeFile(join(dead, 'owner'), '999999999 1');
      await mkdir(join(copiesDir(root.dirs), '.del-999999999-1-x'));
      assert.equal((await snaps.cleanupStale()).sort(), ['.del-999999999-1-x', 'deadbeef']);
      assert.equal(await readdir(copiesDir(root.dirs)), [live.id]);
      await live.release();
      assert.equal(await readdir(copiesDir(root.dirs)), []);
    } finally {
      await root.dispose();
    }
  });
}

test.run();

import { spawn } from 'node:child_process';
import { access, mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { sha256, type Digest } from '../../../src/oci/digest.js';
import { cleanupStaleMounts, mountRootfs } from '../../../src/runtime/overlay.js';
import type { Snapshot } from '../../../src/runtime/snapshotter.js';
import { currentOwner } from '../../../src/runtime/owner.js';
import { mountsUnder } from '../../helpers/mounts.js';
import { makeRoot, skipReason, testCtx, type TestRoot } from './fixture.js';

const test = suite('overlay mountRootfs');
const skip = skipReason();

/** n layers, layer i holding /f<i> (content i) and /shared (content i, so the top wins). */
async function makeLayers(root: TestRoot, n: number): Promise<Digest[]> {
  const out: Digest[] = [];
  for (let i = 0; i < n; i++) {
    const d = await mkdtemp(join(root.dirs.tmp, 'layer-'));
    await writeFile(join(d, `f${i}`), String(i));
    await writeFile(join(d, 'shared'), String(i));
    const diffId = sha256(`tiny-layer-${i}`);
    await root.store.commit(d, diffId, {});
    out.push(diffId);
  }
  return out;
}

async function withMount(root: TestRoot, lower: Digest[], opts: { readonly?: boolean }, fn: (m: Snapshot) => Promise<void>) {
  const m = await mountRootfs(root.store, root.dirs, lower, opts, testCtx());
  try {
    await fn(m);
  } finally {
    await m.release();
  }
}

if (skip) {
  test(`skipped: ${skip}`, () => {});
} else {
  test('writes in merged land in upper; lower stays untouched; keepUpper survives release', async () => {
    const root = await makeRoot();
    try {
      const [l0] = await makeLayers(root, 1);
      const m = await mountRootfs(root.store, root.dirs, [l0!], {}, testCtx());
      let kept: string;
      try {
        assert.equal(mountsUnder(root.dirs.mounts), [m.merged]);
        assert.is(await readFile(join(m.merged, 'f0'), 'utf8'), '0');
        await writeFile(join(m.merged, 'new'), 'x');
        await writeFile(join(m.merged, 'shared'), 'changed');
        assert.is(await readFile(join(m.upper!, 'new'), 'utf8'), 'x');
        assert.is(await readFile(join(m.upper!, 'shared'), 'utf8'), 'changed');
        assert.is(await readFile(join(root.store.dir(l0!), 'shared'), 'utf8'), '0');
        kept = m.keepUpper();
      } finally {
        await m.release();
      }
      assert.equal(mountsUnder(root.dirs.root), []);
      assert.equal(await readdir(root.dirs.mounts), [], 'mount dir removed');
      assert.equal((await readdir(kept)).sort(), ['new', 'shared']);
      await m.release(); // idempotent
    } finally {
      await root.dispose();
    }
  });

  test('without keepUpper, release removes the upper too', async () => {
    const root = await makeRoot();
    try {
      const layers = await makeLayers(root, 1);
      await withMount(root, layers, {}, async (m) => writeFile(join(m.merged, 'x'), 'x'));
      assert.equal(await readdir(root.dirs.mounts), []);
      assert.equal(await readdir(root.dirs.tmp), []);
    } finally {
      await root.dispose();
    }
  });

  test('130 layers mount (short links keep options under a page) with the top layer winning', async () => {
    const root = await makeRoot();
    try {
      const layers = await makeLayers(root, 130);
      await withMount(root, layers, {}, async (m) => {
        const names = await readdir(m.merged);
        for (let i = 0; i < 130; i++) assert.ok(names.includes(`f${i}`), `f${i} visible`);
        assert.is(await readFile(join(m.merged, 'shared'), 'utf8'), '129');
        assert.is(await readFile(join(m.merged, 'f7'), 'utf8'), '7');
      });
    } finally {
      await root.dispose();
    }
  });

  test('scratch (no layers) mounts an empty rootfs', async () => {
    const root = await makeRoot();
    try {
      await withMount(root, [], {}, async (m) => {
        assert.equal(await readdir(m.merged), []);
        await mkdir(join(m.merged, 'etc'));
        await access(join(m.upper!, 'etc'));
      });
    } finally {
      await root.dispose();
    }
  });

  test('readonly mounts (1 and 2 layers) refuse writes and have no upper', async () => {
    const root = await makeRoot();
    try {
      const layers = await makeLayers(root, 2);
      for (const lower of [layers.slice(0, 1), layers]) {
        await withMount(root, lower, { readonly: true }, async (m) => {
          assert.is(m.upper, undefined);
          assert.is(await readFile(join(m.merged, 'shared'), 'utf8'), String(lower.length - 1));
          await writeFile(join(m.merged, 'w'), 'x').then(
            () => assert.unreachable('write should fail'),
            (e: NodeJS.ErrnoException) => assert.is(e.code, 'EROFS'),
          );
        });
      }
    } finally {
      await root.dispose();
    }
  });

  test('an uncommitted layer is refused before mounting', async () => {
    const root = await makeRoot();
    try {
      await mountRootfs(root.store, root.dirs, [sha256('missing')], {}, testCtx()).then(
        () => assert.unreachable('should throw'),
        (e: unknown) => assert.match(String(e), 'not in the layer store'),
      );
      assert.equal(await readdir(root.dirs.mounts), []);
    } finally {
      await root.dispose();
    }
  });

  test('cleanupStaleMounts removes a crashed process\'s mount and spares a live one', async () => {
    const root = await makeRoot();
    try {
      const layers = await makeLayers(root, 1);
      const live = await mountRootfs(root.store, root.dirs, layers, {}, testCtx());
      try {
        // A child process mounts, reports, and is SIGKILLed: its mount is left behind.
        const overlayJs = fileURLToPath(new URL('../../../src/runtime/overlay.js', import.meta.url));
        const storeJs = fileURLToPath(new URL('../../../src/runtime/layer-store.js', import.meta.url));
        const script = `
          const { mountRootfs } = await import(${JSON.stringify(overlayJs)});
          const { LayerStore } = await import(${JSON.stringify(storeJs)});
          const dirs = ${JSON.stringify(root.dirs)};
          const m = await mountRootfs(new LayerStore(dirs), dirs, ${JSON.stringify(layers)}, {}, { signal: new AbortController().signal, events: { emit() {} } });
          process.stdout.write(m.merged + '\\n');
          setInterval(() => {}, 1000);`;
        const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
        const crashed = await new Promise<string>((resolve, reject) => {
          child.stdout.once('data', (b: Buffer) => resolve(b.toString().trim()));
          child.once('exit', (code) => reject(new Error(`child exited early (${code})`)));
        });
        child.kill('SIGKILL');
        await new Promise((r) => child.once('exit', r));
        assert.equal(mountsUnder(root.dirs.mounts).sort(), [crashed, live.merged].sort());

        const removed = await cleanupStaleMounts(root.dirs);
        assert.is(removed.length, 1);
        assert.ok(crashed.includes(removed[0]!));
        assert.equal(mountsUnder(root.dirs.mounts), [live.merged], 'live mount spared');
        assert.equal(await readdir(root.dirs.mounts), [live.id]);
      } finally {
        await live.release();
      }
    } finally {
      await root.dispose();
    }
  });

  test('cleanupStaleMounts removes a half-made or half-deleted dir of a dead process at once, and spares a live one', async () => {
    const root = await makeRoot();
    try {
      // Killed between mkdir and writing the owner file: only the name says whose it is.
      const [pid, start] = (await currentOwner()).split(' ');
      const dead = `.new-999999999-1-${'a'.repeat(24)}`;
      const alive = `.new-${pid}-${start}-${'b'.repeat(24)}`;
      // Killed in the middle of release()'s delete: the owner file may be gone, the name is not.
      const deadDeleting = `.del-999999999-1-${'c'.repeat(24)}`;
      const aliveDeleting = `.del-${pid}-${start}-${'d'.repeat(24)}`;
      for (const d of [dead, alive, deadDeleting, aliveDeleting]) await mkdir(join(root.dirs.mounts, d, 'merged'), { recursive: true });
      assert.equal((await cleanupStaleMounts(root.dirs)).sort(), [dead, deadDeleting].sort());
      assert.equal((await readdir(root.dirs.mounts)).sort(), [alive, aliveDeleting].sort());
    } finally {
      await root.dispose();
    }
  });
}

test.run();

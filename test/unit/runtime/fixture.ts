import { execFileSync } from 'node:child_process';
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nullSink } from '../../../src/events.js';
import type { Ctx } from '../../../src/ctx.js';
import { sha256, type Digest } from '../../../src/oci/digest.js';
import { rootDirs, type RootDirs } from '../../../src/root-dirs.js';
import { LayerStore } from '../../../src/runtime/layer-store.js';
import { makeBusyboxRootfs } from '../../helpers/busybox-rootfs.js';
import { mountsUnder } from '../../helpers/mounts.js';

/** Why root-only runtime tests cannot run here, or undefined when they can. */
export function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root';
  try {
    execFileSync('runc', ['--version'], { stdio: 'ignore' });
  } catch {
    return 'runc not installed';
  }
  return undefined;
}

export function testCtx(signal: AbortSignal = new AbortController().signal): Ctx {
  return { signal, events: nullSink };
}

export interface TestRoot {
  dirs: RootDirs;
  store: LayerStore;
  dispose(): Promise<void>;
}

/** A fresh tsbuild root under /tmp. dispose() fails if a mount was left behind, then removes it. */
export async function makeRoot(): Promise<TestRoot> {
  const dirs = rootDirs(await mkdtemp(join(tmpdir(), 'tsbuild-rt-')));
  for (const d of [dirs.layers, dirs.links, dirs.mounts, dirs.tmp, dirs.runc]) await mkdir(d, { recursive: true });
  return {
    dirs,
    store: new LayerStore(dirs),
    async dispose() {
      const left = mountsUnder(dirs.root);
      for (const m of left.reverse()) execFileSync('umount', ['-l', m]);
      await rm(dirs.root, { recursive: true, force: true });
      if (left.length) throw new Error(`mounts left behind: ${left.join(', ')}`);
    },
  };
}

/** Commits a busybox rootfs as one layer. The diffId is a stand-in: these tests never tar it. */
export async function busyboxLayer(root: TestRoot): Promise<Digest> {
  const src = await mkdtemp(join(root.dirs.tmp, 'bb-'));
  await makeBusyboxRootfs(src);
  const diffId = sha256('busybox-test-layer');
  await root.store.commit(src, diffId, {});
  return diffId;
}

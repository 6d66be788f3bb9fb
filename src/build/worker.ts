import { mkdir } from 'node:fs/promises';
import { ImageLayout } from '../oci/image-layout.js';
import { rootDirs } from '../root-dirs.js';
import { LayerStore } from '../runtime/layer-store.js';
import { mountRootfs } from '../runtime/overlay.js';
import { RuncSandbox } from '../runtime/runc.js';
import type { Worker } from '../solver/worker.js';

/** Opens (creating when missing) the state under `root` and wires the real runtime into a Worker. */
export async function openWorker(root: string): Promise<Worker> {
  const dirs = rootDirs(root);
  for (const d of [dirs.root, dirs.layers, dirs.links, dirs.mounts, dirs.runc, dirs.tmp, dirs.cache]) await mkdir(d, { recursive: true });
  const images = await ImageLayout.open(dirs.store, { create: true, tmpDir: dirs.tmp });
  const layers = new LayerStore(dirs);
  const sandbox = new RuncSandbox({ stateRoot: dirs.runc, bundleRoot: dirs.tmp });
  return {
    dirs,
    images,
    blobs: images.blobs,
    layers,
    sandbox,
    mount: (lower, opts, ctx) => mountRootfs(layers, dirs, lower, opts, ctx),
  };
}

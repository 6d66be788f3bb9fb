import type { Ctx } from '../../ctx.js';
import { formatBytes } from '../../byte-size.js';
import { intoContentStore, writeLayer } from '../../oci/layer/blob.js';
import { DEFAULT_GZIP_LEVEL } from '../../oci/layer/layer-compression.js';
import { writeLayerTar, type TarSink } from '../../oci/layer/diff.js';
import { MediaType } from '../../oci/media-types.js';
import { portableMount, portableMountKey, type PortableCacheMount } from '../../solver/cache-mount-transfer.js';
import type { Vertex } from '../../solver/graph.js';
import { persistentCacheDir } from '../../solver/ops/run-mounts.js';
import type { Worker } from '../../solver/worker.js';
import type { ExportedMount } from './cache-manifest.js';

/** Which cache mounts `--cache-to …,mounts=` carries: all the build used, or those ids. */
export type MountSelection = true | readonly string[];

/**
 * Packs the cache directories of the RUN mounts under `targets` (ran or cached in this build;
 * the ones this root has, selected by id) into the content store, each as one gzip tar made by
 * the layer writer (sorted entries, the files' own times: unchanged content gives the same
 * blob, which a registry or layout already holding it is not sent again). A directory over
 * `maxSize` is left out with a warning; so is a selected id no RUN used. Secrets never live in
 * a cache directory (they are tmpfs mounts of their own), so nothing else is filtered.
 */
export async function packCacheMounts(worker: Worker, targets: readonly Vertex[], select: MountSelection, maxSize: number, flag: string, ctx: Ctx): Promise<ExportedMount[]> {
  const found = new Map<string, { readonly mount: PortableCacheMount; readonly dir: string }>();
  for (const v of vertexClosure(targets)) {
    if (v.op.kind !== 'exec') continue;
    for (const m of v.op.mounts ?? []) {
      if (m.type !== 'cache') continue;
      const mount = portableMount(m);
      if (!mount || (select !== true && !select.includes(mount.id)) || found.has(portableMountKey(mount))) continue;
      const dir = await persistentCacheDir(worker, m);
      if (dir) found.set(portableMountKey(mount), { mount, dir });
    }
  }
  const used = [...found.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, e]) => e);
  if (select !== true) {
    for (const id of select) {
      if (!used.some(({ mount }) => mount.id === id)) ctx.events.emit({ type: 'warning', message: `${flag}: no RUN of this build has cache mount ${JSON.stringify(id)} in this root, so it is not exported`, at: Date.now() });
    }
  }
  const out: ExportedMount[] = [];
  for (const { mount, dir } of used) {
    ctx.signal.throwIfAborted();
    // The size is counted as the tar is written (one walk), and a mount past it is abandoned.
    let total = 0;
    const capped = (w: TarSink): TarSink => ({
      add(entry, body) {
        total += entry.size;
        if (total > maxSize) throw new MountTooBig();
        return w.add(entry, body);
      },
    });
    try {
      // Packed for export only (never unpacked as a layer here), so compressed right away.
      const blob = await writeLayer((w) => writeLayerTar(dir, capped(w), {}, ctx.signal), intoContentStore(worker.blobs, ctx.signal), { compression: 'gzip', level: DEFAULT_GZIP_LEVEL }, ctx.signal);
      out.push({ ...mount, blob: { mediaType: MediaType.ociLayerGzip, digest: blob.digest, size: blob.size } });
    } catch (e) {
      if (!(e instanceof MountTooBig)) throw e;
      ctx.events.emit({ type: 'warning', message: `${flag}: cache mount ${JSON.stringify(mount.id)} holds more than mounts-max-size (${formatBytes(maxSize)}), so it is not exported`, at: Date.now() });
    }
  }
  return out;
}

class MountTooBig extends Error {}

/** Every vertex under `targets`, each once. */
function vertexClosure(targets: readonly Vertex[]): Vertex[] {
  const seen = new Map<string, Vertex>();
  const stack = [...targets];
  while (stack.length) {
    const v = stack.pop()!;
    if (seen.has(v.digest)) continue;
    seen.set(v.digest, v);
    stack.push(...v.inputs);
  }
  return [...seen.values()];
}

import { chmod, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Ctx } from '../ctx.js';
import { canonicalJson } from '../oci/canonical-json.js';
import { digestHex, isDigest, sha256, type Digest } from '../oci/digest.js';
import { applyLayer } from '../oci/layer/apply.js';
import { writeLayerTar } from '../oci/layer/diff.js';
import { TarWriter } from '../oci/tar/tar-writer.js';
import { writeFileAtomic } from '../oci/image-layout.js';
import { commitUpperAsLayer } from '../solver/ops/commit-layer.js';
import type { Worker } from '../solver/worker.js';
import { sweepMemoDir } from '../solver/memo-sweep.js';
import type { RootDirs } from '../root-dirs.js';

/**
 * `--squash` (`new`): the layers this build added become one layer in overlay format, so its
 * whiteouts still delete what the base image's layers hold. `--squash-all` (`all`): every layer
 * becomes one plain tree, the image's whole filesystem, with no whiteouts left.
 */
export type SquashMode = 'new' | 'all';

/**
 * The diffID of one layer equal to `layers` applied in order. Each layer is re-read from its
 * unpacked directory through the same tar writer and applier as any layer (no second
 * implementation of whiteouts and opaque directories), into a directory that is then committed
 * like a step's upperdir. Remembered under cache/squash by the input diffIDs, so a cached
 * rebuild with --squash does no work and gets the same layer (and image ID).
 */
export async function squashLayers(worker: Worker, layers: readonly Digest[], mode: SquashMode, ctx: Ctx): Promise<Digest> {
  const memo = join(squashMemoDir(worker.dirs), `${digestHex(sha256(canonicalJson({ mode, layers })))}.json`);
  const known = await recall(memo, mode, layers);
  if (known && (await worker.layers.has(known)) && (await worker.layers.blob(known))) return known;

  await mkdir(worker.dirs.tmp, { recursive: true });
  const dir = await mkdtemp(join(worker.dirs.tmp, 'squash-'));
  try {
    // As a step's upperdir: the merged root of the image is not private to root.
    await chmod(dir, 0o755);
    const opaqueXattr = worker.layers.opaqueXattr;
    for (const diffId of layers) {
      ctx.signal.throwIfAborted();
      const writer = new TarWriter();
      const written = (async () => {
        try {
          await writeLayerTar(worker.layers.dir(diffId), writer, { opaqueXattr }, ctx.signal);
          await writer.finish();
        } catch (e) {
          writer.destroy(e as Error);
          throw e;
        }
      })();
      const applied = applyLayer(writer.stream, dir, mode === 'all' ? { mode: 'flatten' } : { mode: 'overlay', opaqueXattr, stacked: true }, ctx.signal);
      await Promise.all([written, applied]);
    }
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  // The commit owns `dir` from here (it moves it into the layer store, or removes it).
  const committed = await commitUpperAsLayer(worker, dir, { kind: 'rootfs', layers: [] }, ctx, { keepEmpty: true });
  const squashed = committed.layers.at(-1)!.diffId;
  const entry: MemoFile = { version: VERSION, mode, layers: [...layers], squashed };
  await mkdir(join(memo, '..'), { recursive: true });
  await writeFileAtomic(memo, JSON.stringify(entry));
  return squashed;
}

const VERSION = 1;

interface MemoFile {
  readonly version: number;
  readonly mode: SquashMode;
  readonly layers: readonly Digest[];
  readonly squashed: Digest;
}

async function recall(path: string, mode: SquashMode, layers: readonly Digest[]): Promise<Digest | undefined> {
  try {
    const m = JSON.parse(await readFile(path, 'utf8')) as Partial<MemoFile>;
    const same = m.version === VERSION && m.mode === mode && Array.isArray(m.layers) && m.layers.length === layers.length && m.layers.every((d, i) => d === layers[i]);
    return same && typeof m.squashed === 'string' && isDigest(m.squashed) ? m.squashed : undefined;
  } catch {
    return undefined;
  }
}

export function squashMemoDir(dirs: RootDirs): string {
  return join(dirs.cache, 'squash');
}

/** Prune's sweep: entries whose input or squashed layer is gone. @returns how many went. */
export function sweepSquashMemo(dir: string, present: (diffId: Digest) => boolean): Promise<number> {
  return sweepMemoDir(dir, async (path) => {
    const m = await readFile(path, 'utf8')
      .then((t) => JSON.parse(t) as Partial<MemoFile>)
      .catch(() => undefined);
    const all = m && Array.isArray(m.layers) && typeof m.squashed === 'string' ? [...m.layers, m.squashed] : undefined;
    return all?.every((d) => typeof d === 'string' && isDigest(d)) ? all : undefined;
  }, present);
}

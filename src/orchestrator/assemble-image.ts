import type { BuildPlan } from '../frontend/compile.js';
import { BuildError } from '../errors.js';
import type { Digest } from '../oci/digest.js';
import type { ContainerConfig, Descriptor, ImageConfig, Platform } from '../oci/image.js';
import { MediaType } from '../oci/media-types.js';
import { compressionOfMediaType, layerMediaType } from '../oci/layer/layer-compression.js';
import type { Result, RootfsResult, Vertex } from '../solver/graph.js';
import type { Worker } from '../solver/worker.js';
import type { ContentStore } from '../oci/content-store.js';
import type { Ctx } from '../ctx.js';
import { squashLayers, type SquashMode } from './squash-layers.js';

export interface AssembledImage {
  readonly manifest: Descriptor;
  readonly config: Descriptor;
  readonly imageConfig: ImageConfig;
  /** Indexes into the manifest's layers of those this build's steps made (not the base image's). */
  readonly ownLayers: readonly number[];
}

/**
 * Writes the solved target as an image into the content store: the config (plan's config plus
 * diff_ids, `created`, and `empty_layer` for steps whose vertex added no layer, as BuildKit's
 * exporter records them) and an OCI manifest over the layers' stored blobs: this build's as
 * uncompressed tars (outputs compress them), a base image's as pulled.
 *
 * Times: with `created` (SOURCE_DATE_EPOCH) every step of this build and the image get it.
 * Without, as BuildKit: a step that added a layer gets the time that layer was made (so a
 * fully cached rebuild writes the same config and manifest as the build that made the cache),
 * a step without one the time of the entry before it, and the image the time of its last entry.
 * `annotations` go on the manifest, sorted so equal input gives equal bytes; `configExtra` adds
 * top-level config fields (the inline build cache).
 */
export async function assembleImage(
  worker: Worker,
  plan: BuildPlan,
  results: ReadonlyMap<Digest, Result>,
  created: Date | undefined,
  opts: {
    readonly annotations?: Readonly<Record<string, string>>;
    readonly configExtra?: Readonly<Record<string, unknown>>;
    /** `--squash` / `--squash-all`, with the build's context for the work it does. */
    readonly squash?: { readonly mode: SquashMode; readonly ctx: Ctx };
  } = {},
): Promise<AssembledImage> {
  let final = plan.target ? rootfs(results.get(plan.target.digest)) : { kind: 'rootfs' as const, layers: [] };
  const history = (plan.config.history ?? []).map((h) => ({ ...h }));
  const layerTimes = new Map<number, string>();
  let ownLayers = new Set<number>();
  /** Where the layers the target stage's own steps added begin (above its base's). */
  let firstAdded: number | undefined;
  for (const [n, step] of plan.layerSteps.entries()) {
    const entry = history[step.historyIndex];
    if (!entry) throw new BuildError('INTERNAL', `history index ${step.historyIndex} out of range`);
    const [before, after] = addedLayers(step.vertex, results);
    if (after > before) {
      if (n >= (plan.stageStepsFrom ?? 0)) firstAdded = Math.min(firstAdded ?? before, before);
      delete entry.empty_layer;
      const stepLayers = rootfs(results.get(step.vertex.digest)).layers;
      for (let i = before; i < after; i++) if (final.layers[i]?.diffId === stepLayers[i]!.diffId) ownLayers.add(i);
      const top = stepLayers.at(-1)!;
      layerTimes.set(step.historyIndex, (await worker.layers.createdAt(top.diffId)).toISOString());
    } else entry.empty_layer = true;
  }
  // Base images' entries keep their own times; this build's steps get the epoch, or see above.
  let last: string | undefined;
  history.forEach((h, i) => {
    h.created ??= created?.toISOString() ?? layerTimes.get(i) ?? last ?? NO_TIME;
    last = h.created;
  });
  const stamp = created?.toISOString() ?? last ?? NO_TIME;

  if (opts.squash && (opts.squash.mode === 'all' || firstAdded !== undefined)) {
    const from = opts.squash.mode === 'all' ? 0 : firstAdded!;
    if (final.layers.length - from > 1) {
      const squashed = await squashLayers(worker, final.layers.slice(from).map((l) => l.diffId), opts.squash.mode, opts.squash.ctx);
      final = { kind: 'rootfs', layers: [...final.layers.slice(0, from), { diffId: squashed }] };
      // As Buildah: every entry of a squashed layer stays, marked empty_layer, and the image's
      // last entry carries the one squashed layer.
      let layer = 0;
      for (const h of history) if (!h.empty_layer && layer++ >= from) h.empty_layer = true;
      if (history.length) delete history[history.length - 1]!.empty_layer;
      ownLayers = new Set([from]);
    }
  }

  const config: ImageConfig = {
    ...plan.config,
    ...(plan.config.config ? { config: withSortedMaps(plan.config.config) } : {}),
    created: stamp,
    rootfs: { type: 'layers', diff_ids: final.layers.map((l) => l.diffId) },
    history,
    // Extra top-level fields (the inline build cache); runtimes ignore fields they don't know.
    ...opts.configExtra,
  };
  const layers: Descriptor[] = [];
  for (const l of final.layers) {
    const blob = await worker.layers.blob(l.diffId);
    if (!blob) throw new BuildError('STORE_CORRUPT', `layer ${l.diffId} has no stored blob`, { hint: 'run `tsbuild prune` and build again' });
    layers.push({ mediaType: layerMediaType(compressionOfMediaType(blob.mediaType) ?? 'gzip'), digest: blob.digest, size: blob.size });
  }
  const sorted = Object.fromEntries(Object.entries(opts.annotations ?? {}).sort(([a], [b]) => (a < b ? -1 : 1)));
  return { ...(await storeImage(worker.blobs, config, layers, sorted)), ownLayers: [...ownLayers].sort((a, b) => a - b) };
}

/** Writes `config` and an OCI manifest over it and `layers` (with `annotations`, already in order) into the content store. */
export async function storeImage(
  blobs: ContentStore,
  config: ImageConfig,
  layers: readonly Descriptor[],
  annotations: Readonly<Record<string, string>> = {},
): Promise<Omit<AssembledImage, 'ownLayers'>> {
  const configBlob = await blobs.putBytes(JSON.stringify(config));
  const configDesc: Descriptor = { mediaType: MediaType.ociConfig, digest: configBlob.digest, size: configBlob.size };
  const manifest = { schemaVersion: 2, mediaType: MediaType.ociManifest, config: configDesc, layers, ...(Object.keys(annotations).length ? { annotations } : {}) };
  const manifestBlob = await blobs.putBytes(JSON.stringify(manifest));
  return { manifest: { mediaType: MediaType.ociManifest, digest: manifestBlob.digest, size: manifestBlob.size }, config: configDesc, imageConfig: config };
}

/** No history and no epoch (FROM scratch with only metadata): a fixed time, not "now", so the ID is stable too. */
const NO_TIME = new Date(0).toISOString();

/**
 * The map-valued fields with their keys sorted, as Go's encoding/json writes maps in docker's and
 * BuildKit's configs, so a config does not depend on the order LABEL, EXPOSE and VOLUME set keys in.
 */
function withSortedMaps(c: ContainerConfig): ContainerConfig {
  const sorted = <T>(m: Record<string, T>): Record<string, T> => Object.fromEntries(Object.entries(m).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  const out: ContainerConfig = { ...c };
  if (c.ExposedPorts) out.ExposedPorts = sorted(c.ExposedPorts);
  if (c.Volumes) out.Volumes = sorted(c.Volumes);
  if (c.Labels) out.Labels = sorted(c.Labels);
  return out;
}

function rootfs(r: Result | undefined): RootfsResult {
  if (r?.kind !== 'rootfs') throw new BuildError('INTERNAL', 'the target did not solve to a root filesystem');
  return r;
}

/** The range of layers an exec/file/merge vertex put on top of the rootfs it wrote to: [before, after). */
function addedLayers(v: Vertex, results: ReadonlyMap<Digest, Result>): [number, number] {
  const after = rootfs(results.get(v.digest)).layers.length;
  const writesOnInput = v.op.kind === 'exec' || v.op.kind === 'merge' ? v.inputs.length > 0 : v.op.kind === 'file' && v.op.base === 'input';
  const before = writesOnInput ? rootfs(results.get(v.inputs[0]!.digest)).layers.length : 0;
  return [before, after];
}

/**
 * Writes an OCI image index over one image per platform, in the order given (BuildKit keeps
 * the --platform order), each entry carrying its platform as runtimes pick by it; attestation
 * manifests follow with their annotations.
 */
export async function assembleIndex(worker: Worker, entries: readonly (Descriptor & { readonly platform: Platform })[]): Promise<Descriptor> {
  const index = {
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: entries.map((e) => ({ mediaType: e.mediaType, digest: e.digest, size: e.size, ...(e.annotations ? { annotations: e.annotations } : {}), platform: e.platform })),
  };
  const blob = await worker.blobs.putBytes(JSON.stringify(index));
  return { mediaType: MediaType.ociIndex, digest: blob.digest, size: blob.size };
}

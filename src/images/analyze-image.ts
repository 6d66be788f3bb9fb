import { availableParallelism } from 'node:os';
import pLimit from 'p-limit';
import type { Ctx } from '../ctx.js';
import { BuildError } from '../errors.js';
import type { ContentStore } from '../oci/content-store.js';
import type { Digest } from '../oci/digest.js';
import type { StoredImage } from '../oci/image-reader.js';
import { LayerAnalysis, type AnalysisResult, type LayerReport } from './layer-analysis.js';
import { layerChanges } from './layer-changes.js';

/** A layer's report with where it comes from: the JSON `layers[]` entries. */
export interface AnalyzedLayer extends LayerReport {
  readonly digest: string;
  readonly diffId: string;
  readonly mediaType: string;
  /** The blob's size as stored (compressed or not). */
  readonly blobSize: number;
  /** The Dockerfile step that made it, as `docker history` shows it ('' when the image has no history). */
  readonly step: string;
}

export interface ImageAnalysis extends Omit<AnalysisResult, 'layers'> {
  readonly layers: readonly AnalyzedLayer[];
}

/**
 * Analyzes an image's layers: each blob is read once; up to as many as there are CPUs are
 * decompressed at once (gunzip runs in libuv's pool, zstd in a child), and their changes are
 * folded base first as they arrive. `markLayer` records that layer's changes for a tree view.
 */
export async function analyzeImage(blobs: ContentStore, img: StoredImage, opts: { top: number; markLayer?: number }, ctx: Ctx): Promise<ImageAnalysis> {
  const ac = new AbortController();
  const signal = AbortSignal.any([ctx.signal, ac.signal]);
  const limit = pLimit(Math.max(1, Math.min(4, availableParallelism())));
  const scans = img.layers.map((l) =>
    limit(() =>
      layerChanges(blobs.openRead(l.digest as Digest), signal).catch((e: unknown) => {
        if (signal.aborted) throw e;
        throw new BuildError('STORE_CORRUPT', `layer ${l.digest}: ${(e as Error).message}`, { cause: e });
      }),
    ),
  );
  // The fold consumes them in order; the first failure stops the rest (which then fail as
  // aborted, so it is the one reported), and no rejection goes unhandled.
  let firstError: unknown;
  for (const s of scans) {
    s.catch((e: unknown) => {
      firstError ??= e;
      ac.abort();
    });
  }
  const fold = new LayerAnalysis(opts.markLayer === undefined ? {} : { markLayer: opts.markLayer });
  try {
    for (let i = 0; i < scans.length; i++) {
      fold.add(await scans[i]!);
      // Let go of the list now: the fold keeps what it needs.
      scans[i] = Promise.resolve([]);
    }
  } catch (e) {
    ac.abort();
    await Promise.allSettled(scans);
    throw ctx.signal.aborted ? e : firstError ?? e;
  }
  const result = fold.finish(opts.top);
  const steps = layerSteps(img);
  const diffIds = img.config.rootfs.diff_ids;
  return {
    ...result,
    layers: result.layers.map((r, i) => ({
      ...r,
      digest: img.layers[i]!.digest,
      diffId: diffIds[i] ?? '',
      mediaType: img.layers[i]!.mediaType,
      blobSize: img.layers[i]!.size,
      step: steps[i] ?? '',
    })),
  };
}

/** The step of each layer: the history entries that made a layer, in order. */
export function layerSteps(img: StoredImage): string[] {
  return (img.config.history ?? []).filter((h) => !h.empty_layer).map((h) => cleanCreatedBy(h.created_by ?? ''));
}

/**
 * `created_by` without the noise `docker history` users learn to skip: BuildKit's ` # buildkit`
 * suffix, the shell of a RUN (`RUN /bin/sh -c …`, `RUN |2 A=1 B=2 /bin/sh -c …`, the build args
 * it ran with) and the legacy builder's `/bin/sh -c #(nop) ` before non-RUN steps.
 */
export function cleanCreatedBy(s: string): string {
  let t = s.replace(/\s+# buildkit$/, '');
  const nop = /^\/bin\/sh -c #\(nop\)\s+/.exec(t);
  if (nop) return t.slice(nop[0].length);
  t = t.replace(/^\/bin\/sh -c /, 'RUN ');
  return t.replace(/^RUN (?:\|\d+ (?:\S+=\S*\s+)*)?\/bin\/sh -c /, 'RUN ');
}

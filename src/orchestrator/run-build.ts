import { stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import type { Ctx } from '../ctx.js';
import { MediaType } from '../oci/media-types.js';
import { BuildError, isAbortError } from '../errors.js';
import { compileDockerfile, type BuildPlan } from '../frontend/compile.js';
import { CHECK_RULES, type CheckWarning } from '../frontend/build-checks.js';
import { CompileFailure } from '../frontend/compile-failure.js';
import { listTargets, type TargetList } from '../frontend/targets.js';
import type { Warning } from '../frontend/stage-state.js';
import { hostPlatform, type Descriptor, type Platform } from '../oci/image.js';
import { cannotRunReason } from '../runtime/platform-support.js';
import type { Isolation } from '../runtime/isolation.js';
import { parseReference } from '../oci/reference.js';
import type { ExportTarget, ImageTarget } from '../exporter/export-target.js';
import { DEFAULT_COMPRESSION, type CompressionOptions } from '../oci/layer/layer-compression.js';
import { solve } from '../solver/scheduler.js';
import { sandboxNetworkUse } from '../solver/run-inputs.js';
import { contextHandler } from '../solver/ops/context.js';
import type { ExecOptions } from '../solver/ops/exec.js';
import { lazyHandler } from '../solver/ops/lazy-handler.js';
import { ensureUnpacked, imageHandler } from '../solver/ops/image.js';
import type { SquashMode } from './squash-layers.js';
import { assembleImage, assembleIndex, type AssembledImage } from './assemble-image.js';
import { provenanceStatement, writeProvenance, type ProvenanceInput, type ProvenanceOptions, type RemoteContext } from './provenance.js';
import { provenanceFiles, type AttestationFile } from '../exporter/local-provenance.js';
import { storeImageResolver } from './image-resolver.js';
import type { RegistryClient } from '../remote/registry-client.js';
import type { HttpTimeouts } from '../remote/http-timeouts.js';
import { cleanupAfterCrashes, openWorker } from './worker.js';
import { readDockerfileWithFallback, readIgnoreFile } from './read-dockerfile.js';
import { contextCommitTime, gitCommitTime } from './git-commit-time.js';
import { urlLastModified } from './url-last-modified.js';
import { prepareNamedContexts } from './named-contexts.js';
import { registerBuild } from './build-registry.js';
import { BuildCache } from '../solver/build-cache.js';
import type { CacheMountTransfer } from '../solver/cache-mount-transfer.js';
import { INLINE_CACHE_KEY } from './cache-transfer/cache-manifest.js';
import type { CacheExportSpec, CacheImportSpec } from './cache-transfer/cache-spec.js';
import { CacheStore, type LayerCheck } from '../solver/cache-store.js';
import { StepHistory } from '../solver/explain.js';
import { StatCache } from '../solver/stat-cache.js';
import { VertexKeyer } from '../solver/vertex-keyer.js';
import { SelectionMemo } from '../solver/selection-memo.js';
import type { Result, RunLimits, Ulimit, Vertex } from '../solver/graph.js';
import type { Worker } from '../solver/worker.js';
import type { ExpansionLimits } from '../oci/layer/expansion-guard.js';
import { digestHex, sha256, type Digest } from '../oci/digest.js';

export interface BuildRequest {
  readonly root: string;
  /**
   * Also name the image as outputs carry it (layers gzip-compressed, see compress-image.ts):
   * BuildResult.distributed, which --metadata-file reports as BuildKit reports its exporter's.
   */
  readonly describeDistributed?: boolean;
  /** `--isolation` / `[build] isolation`: how RUN steps are isolated (default auto). */
  readonly isolation?: Isolation | 'auto';
  readonly contextDir: string;
  /** Path of the Dockerfile; default `<context>/Dockerfile`. */
  readonly dockerfile?: string;
  readonly tags: readonly string[];
  readonly buildArgs: Readonly<Record<string, string>>;
  readonly target?: string;
  /** `--network`: the network of RUN steps that don't name one (default sandbox: a private one). */
  readonly network?: 'sandbox' | 'host' | 'none';
  /** `--allow network.host`: RUN may use the host's network (BuildKit's entitlement). */
  readonly allowNetworkHost?: boolean;
  /** `--ulimit` and `--shm-size` for every RUN. */
  readonly ulimits?: readonly Ulimit[];
  readonly shmSize?: number;
  /** `--memory`, `--cpus`, `--pids-limit`…: cgroup limits of every RUN (part of its cache key). */
  readonly limits?: RunLimits;
  /** `--add-host NAME:IP`: /etc/hosts entries for every RUN. */
  readonly extraHosts?: readonly { readonly host: string; readonly ip: string }[];
  /** `--provenance`: attach a SLSA provenance attestation to each image (the result is then an index). */
  readonly provenance?: ProvenanceOptions;
  /** `--platform`: what to build for, in this order; default: the host's. Several make an image index. */
  readonly platforms?: readonly Platform[];
  readonly labels: Readonly<Record<string, string>>;
  /** Manifest annotations (`--annotation`). */
  readonly annotations?: Readonly<Record<string, string>>;
  readonly outputs: readonly ExportTarget[];
  /**
   * What SOURCE_DATE_EPOCH=context means for a context the CLI fetched (a git URL's commit time,
   * an http one's Last-Modified); without it, a directory's is asked of git there. The epoch
   * itself comes in `buildArgs` (or the Dockerfile's global ARG default) and is resolved when
   * the Dockerfile is compiled.
   */
  readonly contextTime?: () => Promise<Date | undefined>;
  /**
   * SOURCE_DATE_EPOCH=context on a directory outside any git work tree is an error (tsbuild's
   * `--source-date-epoch`), not BuildKit's silence (no epoch: `--build-arg`, `ARG`).
   */
  readonly contextTimeRequired?: boolean;
  /** The context was a URL (a git one with the commit fetched): what provenance records as its config source. */
  readonly remoteContext?: RemoteContext;
  readonly maxParallelism?: number;
  /** `--squash` (this build's layers become one) or `--squash-all` (the image becomes one layer). */
  readonly squash?: SquashMode;
  /** `[unpack]` in tsbuild.toml: how far ADD archives and base-image layers may expand. */
  readonly expansionLimits?: ExpansionLimits;
  /** Pulls missing base images (FROM) and serves `type=registry` outputs; the caller closes it. */
  readonly registry?: RegistryClient;
  /** How long ADD <URL> waits on its server (tsbuild.toml `[network]`); default DEFAULT_HTTP_TIMEOUTS. */
  readonly httpTimeouts?: HttpTimeouts;
  /** `--pull`: resolve every base image against its registry even when it is stored locally. */
  readonly pull?: boolean;
  /** --no-cache: run every step. */
  readonly noCache?: boolean;
  /** --no-cache-filter: run the steps of these stages regardless of the cache. */
  readonly noCacheFilter?: readonly string[];
  /** Explain cache misses (vertex.start events carry `explain`). */
  readonly explain?: boolean;
  /** `--cache-to`: where this build's cache records and their layers are exported after it. */
  readonly cacheTo?: readonly CacheExportSpec[];
  /** `--cache-from`: caches consulted when the local cache misses. */
  readonly cacheFrom?: readonly CacheImportSpec[];
  /** Secrets, ssh agents and entitlements for RUN steps; never part of the graph or its keys. */
  readonly exec?: ExecOptions;
  /** `--build-context NAME=DIR|docker-image://REF|oci-layout://DIR[:TAG]`, as given. */
  readonly buildContexts?: Readonly<Record<string, string>>;
}

export interface BuildResult {
  /** The image manifest, or with several platforms the image index over their manifests. */
  readonly manifest: Descriptor;
  /** The image config (the image ID); absent for several platforms, where the index is the ID. */
  readonly config?: Descriptor;
  /** Normalized names the image was tagged with in the local store. */
  readonly names: readonly string[];
  /** Per request output, in order: the manifest or index it holds (Docker-typed with oci-mediatypes=false). */
  readonly exported: readonly Descriptor[];
  /**
   * With `describeDistributed`: the manifest or index with the layers in the default output
   * compression. The store keeps this build's layers uncompressed, so its own manifest's digest
   * depends on where each layer came from (built here, or a compressed blob from a cache); this
   * one does not, and is what a push or an OCI export of the image is named by.
   */
  readonly distributed?: Descriptor;
}

/** Dockerfile → graph → solved layers → image in the local store (tagged) → requested exports. */
export async function runBuild(request: BuildRequest, ctx: Ctx): Promise<BuildResult> {
  return withBuildInputs(request, ctx, (worker, req, input) => buildWith(worker, req, input, req.tags.map((t) => parseReference(t).toString()), ctx));
}

/**
 * `build --check`: the Dockerfile converted for the first platform as a build would (base
 * images resolved, so checks that need their environment run), nothing built. Returns the
 * build-check findings; `# check=error=true` makes findings an error, as in a build.
 */
export async function checkBuild(request: BuildRequest, ctx: Ctx): Promise<{ readonly checks: readonly CheckWarning[]; readonly error?: BuildError }> {
  return withBuildInputs(request, ctx, async (worker, req, input) => {
    // As BuildKit's lint request: without a target, every stage is checked.
    const all = { ...req, platforms: req.platforms?.slice(0, 1), allStages: !req.target };
    try {
      return { checks: (await compilePlans(worker, all, input, ctx, { report: false }))[0]!.checks };
    } catch (e) {
      if (e instanceof CompileFailure) return { checks: e.checks, error: e };
      throw e;
    }
  });
}

/** `build --call targets`: the Dockerfile's stages as BuildKit's targets request lists them; nothing else is opened. */
export async function buildTargets(request: BuildRequest): Promise<TargetList> {
  const contextDir = resolve(request.contextDir);
  const { path, text } = await readDockerfileWithFallback(resolve(request.dockerfile ?? join(contextDir, 'Dockerfile')));
  return listTargets(text, path);
}

/** The context and Dockerfile of a build, read and checked. */
interface BuildInput {
  readonly contextDir: string;
  readonly dockerfilePath: string;
  readonly text: string;
}

/** Reads the build's inputs and opens (and registers) the worker on the root for `fn`. */
async function withBuildInputs<T>(request: BuildRequest, ctx: Ctx, fn: (worker: Worker, req: BuildRequest, input: BuildInput) => Promise<T>): Promise<T> {
  // Absolute, because runc resolves a relative rootfs against its bundle directory.
  const req = { ...request, root: resolve(request.root) };
  const contextDir = resolve(req.contextDir);
  if (!(await stat(contextDir).catch(() => undefined))?.isDirectory()) {
    throw new BuildError('USAGE', `build context ${req.contextDir} is not a directory`);
  }
  const { path: dockerfilePath, text } = await readDockerfileWithFallback(resolve(req.dockerfile ?? join(contextDir, 'Dockerfile')));
  await cleanupAfterCrashes(req.root);
  const worker = await openWorker(req.root, { privateTmp: true, expansionLimits: req.expansionLimits, ...(req.isolation ? { isolation: req.isolation } : {}) });
  try {
    ctx.events.emit({ type: 'isolation', mode: worker.isolation.mode, reason: worker.isolation.reason, at: Date.now() });
    if (req.exec?.onError && worker.isolation.mode === 'chroot') throw (await import('../solver/ops/failure-shell.js')).refuseFailureShellIn(worker.isolation.mode);
    const registration = await registerBuild(worker.dirs, ctx.signal);
    try {
      return await fn(worker, req, { contextDir, dockerfilePath, text });
    } finally {
      await registration.release();
    }
  } finally {
    await worker.close();
  }
}

/** What the request builds for, in order: `--platform`, or the host's. */
function platformsOf(req: BuildRequest): readonly Platform[] {
  return req.platforms?.length ? req.platforms : [hostPlatform()];
}

/** One plan per platform of the request, in order. */
async function compilePlans(worker: Worker, req: BuildRequest & { allStages?: boolean }, input: BuildInput, ctx: Ctx, how = { report: true }): Promise<BuildPlan[]> {
  const { contextDir, dockerfilePath, text } = input;
  const host = hostPlatform();
  const platforms = platformsOf(req);
  const named = await prepareNamedContexts(req.buildContexts ?? {}, worker, ctx);
  const resolver = named.wrap(storeImageResolver(worker, { registry: req.registry, pull: req.pull }));
  const dockerignore = await readDockerignore(dockerfilePath, contextDir);
  // Asked once for every platform, and only when SOURCE_DATE_EPOCH is `context` or a source stage.
  let contextTime: Promise<Date | undefined> | undefined;
  const commitTime = req.contextTimeRequired ? contextCommitTime : gitCommitTime;
  const timeOfContext = () => (contextTime ??= req.contextTime ? req.contextTime() : commitTime(contextDir, ctx.signal));
  const urlTimes = new Map<string, Promise<Date | undefined>>();
  const timeOfUrl = (url: string) => urlTimes.get(url) ?? urlTimes.set(url, urlLastModified(url, ctx.signal, req.httpTimeouts)).get(url)!;
  const plans: BuildPlan[] = [];
  // Each platform's compile finds the same Dockerfile problems: report each once (a warning
  // repeated within one compile, e.g. two equal EXPOSE words, is reported as often).
  const warned = new Map<string, number>();
  const report = (warnings: readonly Warning[]) => {
    if (!how.report) return;
    const seen = new Map<string, number>();
    for (const w of warnings) {
      const id = `${w.location?.line}|${w.message}`;
      const n = (seen.get(id) ?? 0) + 1;
      seen.set(id, n);
      if (n <= (warned.get(id) ?? 0)) continue;
      warned.set(id, n);
      const rule = w.rule !== undefined ? CHECK_RULES[w.rule] : undefined;
      ctx.events.emit({
        type: 'warning',
        message: w.message,
        ...(w.rule !== undefined ? { rule: w.rule } : {}),
        ...(rule ? { description: rule.description } : {}),
        ...(rule?.url ? { url: rule.url } : {}),
        location: w.location,
        at: Date.now(),
      });
    }
  };
  for (const platform of platforms) {
    const plan = await compileDockerfile(
      { path: dockerfilePath, text },
      {
        dockerfilePath,
        contextDir,
        dockerignore,
        buildArgs: req.buildArgs,
        target: req.target,
        platform,
        buildPlatform: host,
        labelPlatform: platforms.length > 1,
        cannotRun: cannotRunReason,
        ...(req.network ? { network: req.network } : {}),
        allowNetworkHost: req.allowNetworkHost ?? false,
        ...(req.extraHosts?.length ? { extraHosts: req.extraHosts } : {}),
        ...(req.ulimits?.length ? { ulimits: req.ulimits } : {}),
        ...(req.shmSize !== undefined ? { shmSize: req.shmSize } : {}),
        ...(req.limits ? { limits: req.limits } : {}),
        labels: req.labels,
        namedContexts: named.contexts,
        contextTime: timeOfContext,
        urlTime: timeOfUrl,
        ...(req.allStages ? { allStages: true } : {}),
      },
      resolver,
      ctx,
    ).catch((e: unknown) => {
      // The warnings found before the error come first, as BuildKit prints them.
      if (e instanceof CompileFailure) report(e.warnings);
      throw e;
    });
    report(plan.warnings);
    plans.push(plan);
  }
  return plans;
}

async function buildWith(worker: Worker, req: BuildRequest, input: BuildInput, names: string[], ctx: Ctx): Promise<BuildResult> {
  const { contextDir } = input;
  const startedOn = new Date();
  const platforms = platformsOf(req);
  const multi = platforms.length > 1;
  if (multi) {
    const docker = req.outputs.find((o) => o.type === 'docker');
    if (docker) throw new BuildError('USAGE', '--output type=docker: a docker archive holds one platform; use type=oci for several, or build one --platform at a time');
  }
  const plans = await compilePlans(worker, req, input, ctx);
  // SOURCE_DATE_EPOCH as the Dockerfile compile resolved it (the same for every platform).
  const epoch = plans[0]?.sourceDateEpoch;

  // RUN steps mostly wait (on sleeps, networks, disks), so their count is not capped at the CPU
  // count by default: BuildKit has no cap unless max-parallelism is configured, and eight
  // independent stages on two cores would otherwise take four rounds.
  const execParallelism = req.maxParallelism ?? Infinity;
  const ioParallelism = Math.max(4, (req.maxParallelism ?? availableParallelism()) * 2);
  const stats = await StatCache.load(join(worker.dirs.cache, 'stat', `${digestHex(sha256(contextDir))}.json`));
  const usable = layerUsable(worker, ctx);
  const imported = req.cacheFrom?.length ? await (await import('./cache-transfer/cache-import.js')).ImportedCache.load(worker, req.cacheFrom, req.registry, ctx) : undefined;
  // Portable cache mounts: those an imported cache carries fill a cache directory as it is made.
  const cacheMounts: CacheMountTransfer | undefined = imported && { restore: (m, dir, c) => imported.restoreMount(m, dir, c) };
  const cache = new BuildCache(
    new VertexKeyer(stats, {
      open: async (layers, c) => {
        const m = await worker.mount(layers, { readonly: true }, c);
        return { root: m.merged, release: () => m.release() };
      },
      memo: new SelectionMemo(join(worker.dirs.cache, 'selections')),
    }),
    new CacheStore(join(worker.dirs.cache, 'records'), usable),
    new StepHistory(join(worker.dirs.cache, 'steps')),
    { noCache: req.noCache ?? false, noCacheStages: req.noCacheFilter ?? [], explain: req.explain ?? false },
    imported && { lookup: (key, c) => imported.lookup(key, usable, c) },
  );
  const targets = plans.flatMap((p) => (p.target ? [p.target] : []));
  // A step that runs makes the RUN network it leads to, in the background (see sandboxNetworkUse).
  // Not the image and context sources: they are resolved on every build, a no-op's too.
  const network = sandboxNetworkUse(targets);
  const onRun = (v: Vertex, c: Ctx) => {
    if (v.op.kind !== 'image' && v.op.kind !== 'context' && network.inputs.has(v.digest)) worker.sandbox.prepare?.('sandbox', c);
  };
  // network.runs keeps the RUN steps on a private network not yet solved: as one's process
  // exits, the others are as many networks as can still be needed.
  const onSettled = (v: Vertex) => void network.runs.delete(v.digest);
  const networkUsesLeft = (v: Vertex) => (network.runs.delete(v.digest), network.runs.size);
  let results: Map<Digest, Result>;
  try {
    // One solve for every platform: steps they share (FROM --platform=$BUILDPLATFORM stages) run once.
    results = targets.length
      ? await solve(
          targets,
          { image: imageHandler(worker), context: contextHandler, exec: lazyHandler(async () => (await import('../solver/ops/exec.js')).execHandler(worker, { ...(req.exec ?? { secrets: new Map(), ssh: new Map(), allowInsecure: false }), ...(cacheMounts ? { cacheMounts } : {}), ignoresCache: (v) => cache.ignores(v), networkUsesLeft })),
            file: lazyHandler(async () => (await import('../solver/ops/file.js')).fileHandler(worker)),
            merge: lazyHandler(async () => (await import('../solver/ops/merge.js')).mergeHandler),
            http: lazyHandler(async () => (await import('../solver/ops/http.js')).httpHandler(worker, { revalidate: (v) => !cache.ignores(v), ...(req.httpTimeouts ? { timeouts: req.httpTimeouts } : {}) })),
          },
          { execParallelism, ioParallelism, cache, onRun, onSettled },
          ctx,
        )
      : new Map();
  } catch (e) {
    await Promise.all([stats.save(), cache.settle()]);
    throw e;
  }
  // The stat cache and the step history (read only to explain a later build's misses) are
  // written while the image is made; the build ends once they are.
  const saved = Promise.all([stats.save(), cache.settle()]);
  saved.catch(() => undefined);
  worker.stepsDone?.();
  const finals = targets.flatMap((t) => {
    const r = results.get(t.digest);
    return r?.kind === 'rootfs' ? [r] : [];
  });
  const images: AssembledImage[] = [];
  if (req.squash && req.cacheTo?.some((s) => s.type === 'inline')) {
    ctx.events.emit({
      type: 'warning',
      message: `--cache-to type=inline with --squash${req.squash === 'all' ? '-all' : ''}: the image carries the squashed layer, not the step layers its inline cache names, so --cache-from this image reuses nothing; use --cache-to type=registry or type=local`,
      at: Date.now(),
    });
  }
  for (const plan of plans) {
    const final = plan.target && results.get(plan.target.digest);
    const inline = req.cacheTo?.some((s) => s.type === 'inline')
      ? { [INLINE_CACHE_KEY]: await (await import('./cache-transfer/cache-export.js')).inlineCacheConfig(worker, cache.used(), final?.kind === 'rootfs' ? [final] : [], inlineCompression(req.outputs), ctx.signal) }
      : {};
    images.push(await assembleImage(worker, plan, results, epoch, { annotations: req.annotations, configExtra: inline, ...(req.squash ? { squash: { mode: req.squash, ctx } } : {}) }));
  }
  // Provenance and the index are made over whichever images an output takes, once each.
  // mode=max lists each step's layers (BuildKit's buildkit_metadata.layers) as an image carries
  // them: compressed as the first image output compresses (compress-image.ts remembers each, so
  // the image's own are made once), for every rootfs result whose layers all have a blob.
  const layerChains = new Map<string, Descriptor[]>();
  if (req.provenance?.mode === 'max') {
    const { compressedLayer, compressedLayersDir } = await import('../exporter/compress-image.js');
    const compression = inlineCompression(req.outputs);
    for (const [digest, r] of results) {
      if (r.kind !== 'rootfs' || r.layers.length === 0) continue;
      const chain = await Promise.all(r.layers.map((l) => worker.layers.blob(l.diffId)));
      if (!chain.every((b) => b)) continue;
      const shipped = await Promise.all(chain.map((b, i) => compressedLayer(worker.blobs, compressedLayersDir(worker.dirs), b!, r.layers[i]!.diffId, compression, ctx.signal)));
      layerChains.set(digest, shipped.map((b) => ({ mediaType: b.mediaType, digest: b.digest, size: b.size })));
    }
  }
  const provenanceInput = (opts: ProvenanceOptions, i: number, finishedOn: Date): ProvenanceInput => ({
    layerChains,
    ...opts,
    plan: plans[i]!,
    platform: platforms[i]!,
    builderPlatform: hostPlatform(),
    names,
    buildArgs: req.buildArgs,
    labels: req.labels,
    buildContexts: req.buildContexts ?? {},
    ...(req.remoteContext ? { remoteContext: req.remoteContext } : {}),
    ...(req.target !== undefined ? { target: req.target } : {}),
    dockerfile: { name: basename(input.dockerfilePath), text: input.text },
    startedOn,
    finishedOn,
  });
  const finish = async (built: readonly AssembledImage[]): Promise<{ top: Descriptor; config: Descriptor }> => {
    // An attestation names its image by digest, so the image is compressed first (in the first
    // image output's compression): the attested digest is the one outputs carry.
    const imgs = req.provenance
      ? await Promise.all(built.map(async (img) => ({ ...img, manifest: await compressed(worker, img.manifest, inlineCompression(req.outputs), ctx) })))
      : built;
    const entries = imgs.map((img, i) => ({ ...img.manifest, platform: platforms[i]! }));
    if (req.provenance) {
      const finishedOn = new Date();
      for (const [i, img] of imgs.entries()) entries.push(await writeProvenance(worker, img.manifest, provenanceInput(req.provenance, i, finishedOn)));
    }
    return { top: entries.length > 1 ? await assembleIndex(worker, entries) : imgs[0]!.manifest, config: imgs[0]!.config };
  };
  // With SOURCE_DATE_EPOCH, the tags and every output but those saying rewrite-timestamp=false
  // get the image whose own layers have their file times clamped to it.
  const rewrites = (t: ExportTarget): boolean => epoch !== undefined && (t.rewriteTimestamp ?? true);
  const asBuilt = once(() => finish(images));
  const clamp = epoch && (await import('./clamp-image-timestamps.js')).clampImageTimestamps;
  const result = epoch && clamp ? await finish(await Promise.all(images.map((img) => clamp(worker.blobs, worker.dirs, img, epoch, ctx, inlineCompression(req.outputs))))) : await asBuilt();
  for (const name of names) await worker.images.tag(name, result.top);
  const exported: Descriptor[] = [];
  for (const target of req.outputs) {
    const image = rewrites(target) || !epoch ? result.top : (await asBuilt()).top;
    // type=local and type=tar carry the attestations as files (BuildKit: provenance.json).
    let files: AttestationFile[] | undefined;
    if (req.provenance && (target.type === 'local' || target.type === 'tar')) {
      const opts = req.provenance;
      const finishedOn = new Date();
      const statementFor = (i: number, subjects: { name: string; digest: { sha256: string } }[]) => provenanceStatement(subjects, provenanceInput(opts, i, finishedOn));
      files = await provenanceFiles(worker.blobs, image, statementFor, ctx, target.platformSplit);
    }
    const { exportImage } = await import('./export-outputs.js');
    exported.push(await exportImage(worker, image, target, names, ctx, req.registry, rewrites(target) ? epoch : undefined, files));
    ctx.events.emit({ type: 'export.done', target: target.type, digest: exported.at(-1)!.digest, at: Date.now() });
  }
  for (const spec of req.cacheTo ?? []) {
    if (spec.type === 'inline') continue;
    const { packCacheMounts } = await import('./cache-transfer/cache-mounts.js');
    const { cacheRecords, exportCache } = await import('./cache-transfer/cache-export.js');
    const mounts = spec.mounts ? await packCacheMounts(worker, targets, spec.mounts.select, spec.mounts.maxSize, '--cache-to', ctx) : [];
    const r = await exportCache(worker, cacheRecords(cache.used(), finals, spec.mode), spec, req.registry, ctx, mounts);
    ctx.events.emit({ type: 'export.done', target: `cache (${spec.type}, ${r.records} records, ${r.layers} layers${mounts.length ? `, ${mounts.length} cache mounts` : ''})`, digest: r.manifest.digest, at: Date.now() });
  }
  const distributed = req.describeDistributed ? await compressed(worker, result.top, DEFAULT_COMPRESSION, ctx) : undefined;
  await saved;
  return { manifest: result.top, ...(multi ? {} : { config: result.config }), names, exported, ...(distributed ? { distributed } : {}) };
}

/**
 * The inline cache names layer blobs as the pushed image carries them: in the compression of the
 * first image output (BuildKit writes it per exporter; one config serves every output here).
 */
function inlineCompression(outputs: readonly ExportTarget[]): CompressionOptions {
  const image = outputs.find((o): o is ImageTarget => o.type === 'oci' || o.type === 'docker' || o.type === 'registry');
  return image?.compression ?? DEFAULT_COMPRESSION;
}

/** `image` with its layers in `compression` (compress-image.ts, imported when first needed: a cached build without outputs never is). */
async function compressed(worker: Worker, image: Descriptor, compression: CompressionOptions, ctx: Ctx): Promise<Descriptor> {
  const { compressImage, compressedLayersDir } = await import('../exporter/compress-image.js');
  return compressImage(worker.blobs, compressedLayersDir(worker.dirs), image, compression, ctx.signal);
}

/** `f`'s promise, made on the first call only. */
function once<T>(f: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined;
  return () => (p ??= f());
}

/**
 * A cache record may use a layer only when it is committed and its compressed blob is in the
 * store. A layer found usable stays so for the build (prune waits for running builds), so each
 * is checked once: a record holds every layer below its step, and checking them per record made
 * a cached step cost grow with the image's depth (200 cached steps: 60,000 fs calls).
 *
 * A layer whose directory is gone but whose uncompressed blob is stored (every layer tsbuild
 * builds has one, named by its diffID) is unpacked from it again: after a crash, LayerStore.open
 * removes the layer dirs that may not have reached the disk (see unsynced-layers.ts), and the
 * cache keeps working.
 */
function layerUsable(worker: Worker, ctx: Ctx): LayerCheck {
  const usable = new Set<Digest>();
  const check = async (diffId: Digest) => {
    if (!(await worker.layers.has(diffId))) {
      const own = await worker.blobs.stat(diffId);
      if (!own) return false;
      try {
        await ensureUnpacked(worker, { mediaType: MediaType.ociLayer, digest: diffId, size: own.size }, diffId, ctx);
      } catch (e) {
        if (isAbortError(e) || ctx.signal.aborted) throw e;
        return false; // the step runs again instead
      }
    }
    const blob = await worker.layers.blob(diffId);
    const st = blob && (await worker.blobs.stat(blob.digest));
    if (!st || st.size !== blob.size) return false;
    usable.add(diffId);
    return true;
  };
  // Known ones answer at once, without a promise (see CacheStore's #allPresent).
  return (diffId) => usable.has(diffId) || check(diffId);
}

/** BuildKit prefers `<Dockerfile name>.dockerignore` beside the Dockerfile over the context's `.dockerignore`. */
async function readDockerignore(dockerfilePath: string, contextDir: string): Promise<string> {
  for (const p of [join(dirname(dockerfilePath), `${basename(dockerfilePath)}.dockerignore`), join(contextDir, '.dockerignore')]) {
    const text = readIgnoreFile(p);
    if (text !== undefined) return text;
  }
  return '';
}

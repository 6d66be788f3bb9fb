import type { Ctx } from '../../ctx.js';
import { BuildError, isAbortError } from '../../errors.js';
import type { ContentStore } from '../../oci/content-store.js';
import type { Digest } from '../../oci/digest.js';
import type { Descriptor } from '../../oci/image.js';
import { ImageLayout } from '../../oci/image-layout.js';
import { parseReference } from '../../oci/reference.js';
import { formatBytes } from '../../byte-size.js';
import { BODY_LIMITS } from '../../remote/bounded-body.js';
import { fetchBlob } from '../../remote/pull.js';
import type { RegistryClient } from '../../remote/registry-client.js';
import type { Repository } from '../../remote/repository.js';
import type { RootfsResult } from '../../solver/graph.js';
import { ensureUnpacked } from '../../solver/ops/image.js';
import type { Worker } from '../../solver/worker.js';
import { LOCAL_CACHE_TAG, copyBlob } from './cache-export.js';
import { CACHE_CONFIG_MEDIA_TYPE, INLINE_CACHE_KEY, parseCacheConfig, type CacheConfig, type ExportedMount } from './cache-manifest.js';
import { portableMountKey, type PortableCacheMount } from '../../solver/cache-mount-transfer.js';
import { decompressStream } from '../../oci/decompress.js';
import { applyLayer } from '../../oci/layer/apply.js';
import { DEFAULT_EXPANSION_LIMITS, ExpansionGuard } from '../../oci/layer/expansion-guard.js';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { MediaType } from '../../oci/media-types.js';
import type { CacheImportSpec } from './cache-spec.js';
import type { LayerCheck } from '../../solver/cache-store.js';

/** Where an imported cache's blobs come from. */
interface CacheSource {
  readonly name: string;
  fetch(blob: Descriptor, into: ContentStore, ctx: Ctx): Promise<void>;
}

/**
 * The records of `--cache-from` caches, consulted when the local cache misses. Only the small
 * manifest and config are read up front; a layer blob is downloaded (and unpacked) when a
 * record that needs it is hit, and only when the root lacks it — so a second machine fetches
 * just the layers of the steps it reuses.
 */
export class ImportedCache {
  readonly #worker: Worker;
  readonly #records = new Map<Digest, { layers: readonly Digest[]; config: CacheConfig; source: CacheSource }>();
  /** One download + unpack per layer even when several hits need it at once. */
  readonly #pending = new Map<Digest, Promise<void>>();
  /** Cache mounts the imported caches carry, by portableMountKey (the first cache naming one wins). */
  readonly #mounts = new Map<string, { mount: ExportedMount; source: CacheSource }>();

  private constructor(worker: Worker) {
    this.#worker = worker;
  }

  /**
   * Reads the caches named by `specs`. A cache that does not exist yet (the first build) or
   * can't be read is not an error: a warning says so and the build goes on without it.
   */
  static async load(worker: Worker, specs: readonly CacheImportSpec[], registry: RegistryClient | undefined, ctx: Ctx): Promise<ImportedCache> {
    const cache = new ImportedCache(worker);
    for (const spec of specs) {
      try {
        const { source, configs } = await openSource(worker, spec, registry, ctx);
        for (const config of configs) {
          for (const r of config.records) if (!cache.#records.has(r.key)) cache.#records.set(r.key, { layers: r.layers, config, source });
          for (const m of config.mounts ?? []) if (!cache.#mounts.has(portableMountKey(m))) cache.#mounts.set(portableMountKey(m), { mount: m, source });
        }
      } catch (e) {
        if (isAbortError(e) || ctx.signal.aborted) throw e;
        const name = spec.type === 'registry' ? spec.ref : spec.src;
        ctx.events.emit({ type: 'warning', message: `--cache-from ${name}: cache not used: ${(e as Error).message}`, at: Date.now() });
      }
    }
    return cache;
  }

  get size(): number {
    return this.#records.size;
  }

  /**
   * Fills `dir`, a cache mount directory being created, with the contents an imported cache
   * carries for `mount` (downloaded, verified against its digest, unpacked inside `dir` within
   * the unpack limits). False when none carries it, or when it can't be delivered — then `dir`
   * is emptied again and a warning says why: the RUN just starts with an empty cache.
   */
  async restoreMount(mount: PortableCacheMount, dir: string, ctx: Ctx): Promise<boolean> {
    const found = this.#mounts.get(portableMountKey(mount));
    if (!found) return false;
    const { blob } = found.mount;
    try {
      await found.source.fetch(blob, this.#worker.blobs, ctx);
      const guard = new ExpansionGuard(this.#worker.expansionLimits ?? DEFAULT_EXPANSION_LIMITS, `cache mount ${mount.id}`, blob.size);
      const tar = guard.wrap(await decompressStream(this.#worker.blobs.openRead(blob.digest as Digest), ctx.signal));
      try {
        await applyLayer(tar, dir, { mode: 'flatten', onEntry: guard.countEntry }, ctx.signal);
      } finally {
        tar.destroy();
      }
      return true;
    } catch (e) {
      if (isAbortError(e) || ctx.signal.aborted) throw e;
      for (const name of await readdir(dir)) await rm(join(dir, name), { recursive: true, force: true });
      ctx.events.emit({ type: 'warning', message: `--cache-from ${found.source.name}: cache mount ${JSON.stringify(mount.id)} not restored: ${(e as Error).message}`, at: Date.now() });
      return false;
    }
  }

  /**
   * The result recorded for `key`, with every layer made usable in the root (blob fetched,
   * layer unpacked and verified against its diffID); undefined when no imported cache has it.
   * `usable` says whether the root already has a layer.
   */
  async lookup(key: Digest, usable: LayerCheck, ctx: Ctx): Promise<RootfsResult | undefined> {
    const rec = this.#records.get(key);
    if (!rec) return undefined;
    try {
      await this.#makeUsable(rec, usable, ctx);
    } catch (e) {
      // A cache is an optimisation: a layer it can't deliver (deleted, damaged) makes a miss, not a failed build.
      if (isAbortError(e) || ctx.signal.aborted) throw e;
      this.#records.delete(key);
      ctx.events.emit({ type: 'warning', message: `--cache-from ${rec.source.name}: cache record ${key} not used: ${(e as Error).message}`, at: Date.now() });
      return undefined;
    }
    return { kind: 'rootfs', layers: rec.layers.map((diffId) => ({ diffId })) };
  }

  async #makeUsable(rec: { layers: readonly Digest[]; config: CacheConfig; source: CacheSource }, usable: LayerCheck, ctx: Ctx): Promise<void> {
    for (const diffId of rec.layers) {
      if (await usable(diffId)) continue;
      let p = this.#pending.get(diffId);
      if (!p) {
        const blob = rec.config.blobs[diffId]!;
        p = (async () => {
          await rec.source.fetch(blob, this.#worker.blobs, ctx);
          await ensureUnpacked(this.#worker, blob, diffId, ctx);
          const created = rec.config.created?.[diffId];
          if (created !== undefined) await this.#worker.layers.setCreatedAt(diffId, new Date(created));
        })();
        this.#pending.set(diffId, p);
        p.catch(() => this.#pending.delete(diffId));
      }
      await p;
    }
  }
}

async function openSource(worker: Worker, spec: CacheImportSpec, registry: RegistryClient | undefined, ctx: Ctx): Promise<{ source: CacheSource; configs: CacheConfig[] }> {
  switch (spec.type) {
    case 'registry': {
      if (!registry) throw new Error('a registry cache needs a RegistryClient');
      const ref = parseReference(spec.ref);
      const repo: Repository = registry.repository(ref);
      const m = await repo.getManifest(ref.digest ?? ref.tag ?? 'latest', ctx.signal);
      const source: CacheSource = {
        name: spec.ref,
        fetch: async (blob, into, c) => void (await fetchBlob(repo, blob, into, c)),
      };
      const read = async (d: Descriptor) => (await repo.getManifest(d.digest, ctx.signal)).bytes;
      return { source, configs: await readConfigs(m.bytes, read, spec.ref, source, worker.blobs, ctx) };
    }
    case 'local': {
      const layout = await ImageLayout.open(spec.src, { create: false });
      const desc = (await layout.resolve(LOCAL_CACHE_TAG)) ?? (await layout.readIndex()).manifests[0];
      if (!desc) throw new BuildError('USAGE', `${spec.src} holds no cache`);
      const source: CacheSource = { name: spec.src, fetch: (blob, into, c) => copyBlob(layout.blobs, into, blob, c) };
      const read = (d: Descriptor) => layout.blobs.readBytes(d.digest as Digest);
      return { source, configs: await readConfigs(await layout.blobs.readBytes(desc.digest), read, spec.src, source, worker.blobs, ctx) };
    }
    default: {
      const never: never = spec;
      return never;
    }
  }
}

/**
 * The cache configs behind a manifest, or behind each manifest of an image index (a
 * multi-platform image built with --cache-to type=inline carries one per platform). Index
 * entries without a cache are skipped; an index with none at all is an error.
 */
async function readConfigs(bytes: Buffer, read: (d: Descriptor) => Promise<Buffer>, name: string, source: CacheSource, store: ContentStore, ctx: Ctx): Promise<CacheConfig[]> {
  let entries: Descriptor[] | undefined;
  try {
    const doc = JSON.parse(bytes.toString('utf8')) as { manifests?: Descriptor[]; layers?: unknown };
    if (Array.isArray(doc.manifests) && !Array.isArray(doc.layers)) entries = doc.manifests;
  } catch {
    throw new BuildError('REGISTRY', `cache ${name}: the manifest is not JSON`);
  }
  if (!entries) return [await readConfig(bytes, name, source, store, ctx)];
  const configs: CacheConfig[] = [];
  const problems: string[] = [];
  for (const e of entries) {
    try {
      configs.push(await readConfig(await read(e), name, source, store, ctx));
    } catch (err) {
      if (isAbortError(err) || ctx.signal.aborted) throw err;
      problems.push(`${e.digest}: ${(err as Error).message}`);
    }
  }
  if (configs.length === 0) throw new BuildError('REGISTRY', `cache ${name}: no image of the index has a cache (${problems.join('; ')})`, { hint: 'point --cache-from at what --cache-to wrote' });
  return configs;
}

/** The cache config a manifest points at, fetched into the store (it is small) and validated. */
async function readConfig(manifestBytes: Buffer, name: string, source: CacheSource, store: ContentStore, ctx: Ctx): Promise<CacheConfig> {
  let m: { config?: Descriptor };
  try {
    m = JSON.parse(manifestBytes.toString('utf8')) as { config?: Descriptor };
  } catch {
    throw new BuildError('REGISTRY', `cache ${name}: the manifest is not JSON`);
  }
  const image = m.config?.mediaType === MediaType.ociConfig || m.config?.mediaType === MediaType.dockerConfig;
  if (!m.config || (m.config.mediaType !== CACHE_CONFIG_MEDIA_TYPE && !image)) {
    throw new BuildError('REGISTRY', `cache ${name}: not a tsbuild cache (config media type ${JSON.stringify(m.config?.mediaType)})`, { hint: 'point --cache-from at what --cache-to wrote' });
  }
  // Read into memory below: a hostile cache must not make tsbuild fetch (and buffer) an endless one.
  if (!Number.isSafeInteger(m.config.size) || m.config.size < 0 || m.config.size > BODY_LIMITS.config) {
    throw new BuildError('REGISTRY', `cache ${name}: the cache config's size ${JSON.stringify(m.config.size)} is invalid or over ${formatBytes(BODY_LIMITS.config)}`);
  }
  await source.fetch(m.config, store, ctx);
  const bytes = await store.readBytes(m.config.digest);
  if (!image) return parseCacheConfig(bytes, name);
  // An image: its inline cache (--cache-to type=inline), if it was built with one.
  const inline = (JSON.parse(bytes.toString('utf8')) as Record<string, unknown>)[INLINE_CACHE_KEY];
  if (inline === undefined) throw new BuildError('REGISTRY', `cache ${name}: the image has no inline cache`, { hint: 'build it with --cache-to type=inline' });
  return parseCacheConfig(Buffer.from(JSON.stringify(inline)), name);
}

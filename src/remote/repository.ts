import type { Readable } from 'node:stream';
import { isDigest, sha256, type Digest } from '../oci/digest.js';
import { MediaType } from '../oci/media-types.js';
import { formatBytes } from '../byte-size.js';
import { BODY_LIMITS, readBounded, readErrorBody } from './bounded-body.js';
import { errorForStatus, RegistryError } from './registry-error.js';
import type { RegistryHost } from './registry-host.js';
import { header, type HttpResponse } from './transport.js';

/** Manifest media types tsbuild reads and writes. */
export const MANIFEST_MEDIA_TYPES: readonly string[] = [MediaType.ociManifest, MediaType.ociIndex, MediaType.dockerManifest, MediaType.dockerManifestList];

/** A fetched manifest: the exact bytes (their sha256 is the digest) and its media type. */
export interface FetchedManifest {
  readonly bytes: Buffer;
  readonly digest: Digest;
  readonly mediaType: string;
}

/**
 * One repository on one registry (distribution spec endpoints under `/v2/<path>/`). Every
 * method takes the caller's signal; failures are RegistryErrors naming registry and repository.
 */
export class Repository {
  readonly host: RegistryHost;
  /** `team/app`, `library/busybox`. */
  readonly path: string;

  constructor(host: RegistryHost, path: string) {
    this.host = host;
    this.path = path;
  }

  get #pull(): string[] {
    return [`repository:${this.path}:pull`];
  }

  get #push(): string[] {
    return [`repository:${this.path}:pull,push`];
  }

  #where(what: string): { repository: string; what: string } {
    return { repository: this.path, what };
  }

  #fail(status: number, body: string, what: string): RegistryError {
    return errorForStatus(status, body, { registry: this.host.registry, repository: this.path, what });
  }

  /**
   * GETs the manifest or index for a tag or digest. A digest reference is verified against the
   * bytes; a media type tsbuild does not read (schema 1, artifacts) is REGISTRY_UNSUPPORTED.
   */
  async getManifest(reference: string, signal: AbortSignal): Promise<FetchedManifest> {
    const what = `pull manifest ${this.path}:${reference}`;
    const res = await this.host.request(
      { method: 'GET', path: `/v2/${this.path}/manifests/${reference}`, headers: { accept: MANIFEST_MEDIA_TYPES.join(', ') } },
      this.#pull,
      signal,
      this.#where(what),
    );
    if (res.status !== 200) throw this.#fail(res.status, await readErrorBody(res.body), what);
    // Counted as the bytes arrive: Content-Length may lie, and a chunked body may never end.
    const tooLarge = () =>
      new RegistryError('REGISTRY', `${what}: registry ${this.host.registry} sent a manifest larger than ${formatBytes(BODY_LIMITS.manifest)}; the connection was dropped`, {
        registry: this.host.registry,
        repository: this.path,
        hint: 'manifests and indexes are small JSON documents; the registry is broken or hostile',
      });
    if (Number(header(res.headers, 'content-length') ?? '0') > BODY_LIMITS.manifest) {
      res.body.destroy();
      throw tooLarge();
    }
    const bytes = await readBounded(res.body, BODY_LIMITS.manifest, tooLarge).catch((e: unknown) => {
      throw this.host.bodyError(e, this.#where(what));
    });
    const digest = sha256(bytes);
    if (isDigest(reference) && digest !== reference) {
      throw new RegistryError('REGISTRY', `${what}: registry ${this.host.registry} returned content whose digest is ${digest}`, { registry: this.host.registry, repository: this.path });
    }
    const mediaType = (header(res.headers, 'content-type') ?? '').split(';')[0]!.trim();
    const parsed = mediaTypeOf(bytes);
    if (parsed === null) {
      throw new RegistryError('REGISTRY', `${what}: registry ${this.host.registry} repository ${this.path} sent a manifest that is not valid JSON`, { registry: this.host.registry, repository: this.path });
    }
    const declared = parsed ?? mediaType;
    if (!MANIFEST_MEDIA_TYPES.includes(declared)) {
      throw new RegistryError('REGISTRY_UNSUPPORTED', `${what}: unsupported manifest media type ${JSON.stringify(declared || 'none')} from registry ${this.host.registry} repository ${this.path}`, {
        registry: this.host.registry,
        repository: this.path,
        hint: 'tsbuild reads OCI and Docker schema 2 images only',
      });
    }
    return { bytes, digest, mediaType: declared };
  }

  /** PUTs a manifest under a tag or its digest; returns the digest the registry reports (or computes). */
  async putManifest(reference: string, bytes: Buffer, mediaType: string, signal: AbortSignal): Promise<Digest> {
    const what = `push manifest ${this.path}:${reference}`;
    const res = await this.host.request(
      { method: 'PUT', path: `/v2/${this.path}/manifests/${reference}`, headers: { 'content-type': mediaType }, body: () => bytes },
      this.#push,
      signal,
      this.#where(what),
    );
    const body = await readErrorBody(res.body);
    if (res.status !== 201 && res.status !== 200 && res.status !== 202) {
      if (res.status === 400 || res.status === 415) {
        throw new RegistryError('REGISTRY_UNSUPPORTED', `${what}: registry ${this.host.registry} rejected manifest media type ${mediaType} (HTTP ${res.status}) ${body.slice(0, 300)}`, {
          registry: this.host.registry,
          repository: this.path,
          status: res.status,
        });
      }
      throw this.#fail(res.status, body, what);
    }
    return sha256(bytes);
  }

  /** The blob's size when the repository has it, undefined when it doesn't. */
  async statBlob(digest: Digest, signal: AbortSignal, scopes = this.#pull): Promise<number | undefined> {
    const what = `check blob ${digest}`;
    const res = await this.host.request({ method: 'HEAD', path: `/v2/${this.path}/blobs/${digest}` }, scopes, signal, this.#where(what));
    await res.body.dump().catch(() => undefined);
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw this.#fail(res.status, '', what);
    return Number(header(res.headers, 'content-length') ?? '0');
  }

  /**
   * The blob's bytes as a stream the caller must consume or destroy. Follows redirects to
   * storage backends (without the registry's Authorization). Not verified here: write it
   * through a ContentStore writer with the expected digest.
   */
  async openBlob(digest: Digest, signal: AbortSignal): Promise<Readable> {
    const what = `pull blob ${digest}`;
    let res = await this.host.request({ method: 'GET', path: `/v2/${this.path}/blobs/${digest}` }, this.#pull, signal, this.#where(what));
    for (let hops = 0; res.status >= 300 && res.status < 400 && hops < 5; hops++) {
      const loc = header(res.headers, 'location');
      await res.body.dump().catch(() => undefined);
      if (!loc) throw this.#fail(res.status, '', what);
      res = await this.host.request({ method: 'GET', url: new URL(loc, res.url).toString() }, [], signal, this.#where(what));
    }
    if (res.status !== 200) throw this.#fail(res.status, await readErrorBody(res.body), what);
    return res.body;
  }

  /**
   * Starts an upload; with `mountFrom` (another repository of this registry), asks for a
   * cross-repository mount first. Returns `{ mounted: true }` when the registry mounted the
   * blob, else the upload's absolute URL.
   */
  async startUpload(signal: AbortSignal, mount?: { digest: Digest; from: string }): Promise<{ mounted: true } | { mounted: false; location: string }> {
    const what = mount ? `mount blob ${mount.digest} from ${mount.from}` : 'start blob upload';
    const q = mount ? `?mount=${encodeURIComponent(mount.digest)}&from=${encodeURIComponent(mount.from)}` : '';
    const scopes = mount ? [...this.#push, `repository:${mount.from}:pull`] : this.#push;
    const res = await this.host.request({ method: 'POST', path: `/v2/${this.path}/blobs/uploads/${q}`, headers: { 'content-length': '0' } }, scopes, signal, this.#where(what));
    const body = await readErrorBody(res.body);
    if (res.status === 201 && mount) return { mounted: true };
    if (res.status !== 202) throw this.#fail(res.status, body, what);
    return { mounted: false, location: this.resolveLocation(res) };
  }

  /** Upload Locations may be relative to the registry. */
  resolveLocation(res: { headers: HttpResponse['headers']; url: string }): string {
    const loc = header(res.headers, 'location');
    if (!loc) throw new RegistryError('REGISTRY', `registry ${this.host.registry} started an upload without a Location header`, { registry: this.host.registry, repository: this.path });
    return new URL(loc, res.url).toString();
  }
}

/** The media type a manifest declares or implies; undefined when it says nothing, null when it is not JSON. */
function mediaTypeOf(bytes: Buffer): string | undefined | null {
  try {
    const j = JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown; schemaVersion?: unknown; manifests?: unknown; config?: unknown };
    if (typeof j.mediaType === 'string') return j.mediaType;
    if (j.schemaVersion === 1) return 'application/vnd.docker.distribution.manifest.v1+json';
    // OCI allows omitting mediaType; infer it from the shape.
    if (Array.isArray(j.manifests)) return MediaType.ociIndex;
    if (j.config) return MediaType.ociManifest;
  } catch {
    return null;
  }
  return undefined;
}

import type { CredentialSource } from './credentials.js';
import { RegistryHost } from './registry-host.js';
import { Repository } from './repository.js';
import { DEFAULT_RETRY, Transport, type RetryPolicy } from './transport.js';
import { DEFAULT_UPLOAD, type UploadOptions } from './blob-upload.js';
import type { HttpTimeouts } from './http-timeouts.js';

/** Everything the registry client is configured with; the CLI builds it from tsbuild.toml and the environment. */
export interface RegistryOptions {
  readonly credentials?: CredentialSource;
  /**
   * Registries (`host` or `host:port`) reached over plain HTTP or with unverified TLS.
   * localhost, 127.0.0.1 and [::1] always are, as with docker.
   */
  readonly insecure?: readonly string[];
  /** Pull mirrors per registry: `{ 'docker.io': ['mirror.example:5000'] }`, tried in order before the registry itself. */
  readonly mirrors?: Readonly<Record<string, readonly string[]>>;
  readonly retry?: RetryPolicy;
  /** Connect, response and idle-body timeouts (default DEFAULT_HTTP_TIMEOUTS). */
  readonly timeouts?: HttpTimeouts;
  readonly upload?: Partial<UploadOptions>;
  /** Concurrent blob transfers per image. */
  readonly parallelism?: number;
}

/**
 * The entry point of src/remote: hands out {@link Repository} handles that share one HTTP pool
 * and, per registry, one auth state (ping result, token cache). One client per command; call
 * `close()` when done so keep-alive sockets don't hold the process open.
 */
export class RegistryClient {
  readonly upload: UploadOptions;
  readonly parallelism: number;
  readonly #opts: RegistryOptions;
  readonly #transport: Transport;
  readonly #hosts = new Map<string, RegistryHost>();

  constructor(opts: RegistryOptions = {}) {
    this.#opts = opts;
    this.#transport = new Transport({ retry: opts.retry ?? DEFAULT_RETRY, ...(opts.timeouts ? { timeouts: opts.timeouts } : {}) });
    this.upload = { ...DEFAULT_UPLOAD, ...opts.upload };
    this.parallelism = opts.parallelism ?? 4;
  }

  /** The registry at `registry` (a reference's domain). */
  host(registry: string): RegistryHost {
    let h = this.#hosts.get(registry);
    if (!h) {
      h = new RegistryHost(registry, this.#transport, { credentials: this.#opts.credentials, insecure: this.#opts.insecure ?? [] });
      this.#hosts.set(registry, h);
    }
    return h;
  }

  repository(ref: { readonly domain: string; readonly path: string }): Repository {
    return new Repository(this.host(ref.domain), ref.path);
  }

  /** Where to pull `ref` from: its mirrors in order, then the registry itself. */
  pullSources(ref: { readonly domain: string; readonly path: string }): Repository[] {
    const mirrors = this.#opts.mirrors?.[ref.domain] ?? [];
    return [...mirrors.map((m) => new Repository(this.host(m), ref.path)), this.repository(ref)];
  }

  async close(): Promise<void> {
    await this.#transport.close();
  }
}

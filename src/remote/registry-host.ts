import { formatBytes } from '../byte-size.js';
import { BuildError, isAbortError } from '../errors.js';
import { BODY_LIMITS, readBounded, readErrorBody } from './bounded-body.js';
import type { Credential, CredentialSource } from './credentials.js';
import { timeoutDescription, transferFailure } from './http-timeouts.js';
import { errorForStatus, RegistryError } from './registry-error.js';
import { headerAll, type HttpRequest, type HttpResponse, type Transport } from './transport.js';
import { certificateError } from './tls-certificate-error.js';
import { parseWwwAuthenticate, type AuthChallenge } from './www-authenticate.js';

/** Hosts where plain HTTP is allowed without configuration, as docker does. */
const LOCAL_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/** A request to the registry API; `path` starts with `/v2/`, or `url` is absolute (upload Locations). */
export interface ApiRequest extends Omit<HttpRequest, 'url'> {
  readonly path?: string;
  readonly url?: string;
}

/** Docker Hub's API lives on another host than the name users write. */
export function apiHostFor(registry: string): string {
  return registry === 'docker.io' ? 'registry-1.docker.io' : registry;
}

/** `host:port` minus the port; `[::1]:5000` → `[::1]`. */
function hostname(registry: string): string {
  if (registry.startsWith('[')) return registry.slice(0, registry.indexOf(']') + 1);
  const colon = registry.lastIndexOf(':');
  return colon < 0 ? registry : registry.slice(0, colon);
}

/**
 * One registry endpoint: picks https (or, for insecure registries, falls back to http), learns
 * its auth scheme from the `/v2/` ping, and signs requests: Basic with the stored credential,
 * or Bearer tokens fetched from the challenge's realm and cached per scope until they expire.
 * A 401 drops the cached token and retries once with a fresh one (expired or too narrow token).
 */
export class RegistryHost {
  /** The name in references: `docker.io`, `127.0.0.1:5000`. */
  readonly registry: string;
  readonly #transport: Transport;
  readonly #credentials: CredentialSource | undefined;
  /** Plain HTTP may be tried after https: localhost, or named insecure. */
  readonly #insecure: boolean;
  /** TLS without certificate verification: only registries named insecure (docker's insecure-registries). */
  readonly #skipVerify: boolean;
  #ping?: Promise<{ base: string; challenge?: AuthChallenge }>;
  readonly #tokens = new Map<string, { token: string; expires: number }>();
  #credential?: Promise<Credential | undefined>;

  constructor(registry: string, transport: Transport, opts: { credentials?: CredentialSource; insecure: readonly string[] }) {
    this.registry = registry;
    this.#transport = transport;
    this.#credentials = opts.credentials;
    this.#skipVerify = opts.insecure.includes(registry) || opts.insecure.includes(hostname(registry));
    this.#insecure = LOCAL_HOSTS.has(hostname(registry)) || this.#skipVerify;
  }

  /**
   * Checks that the registry speaks the v2 API and, with credentials, that they are accepted.
   * With `offline` (login), a Bearer token server is asked for an offline token, as `docker
   * login` does; the refresh token it returns, if any, is handed back to be stored as the
   * identity token in place of the password.
   */
  async ping(signal: AbortSignal, opts: { offline?: boolean } = {}): Promise<{ identityToken?: string }> {
    const { challenge } = await this.#pingOnce(signal);
    if (!challenge) return {};
    let identityToken: string | undefined;
    if (opts.offline && challenge.scheme === 'bearer' && (await this.#getCredential())) {
      // Fetched here (it lands in the token cache for the bare scope) so its refresh token is seen.
      identityToken = (await this.#fetchToken(challenge, [], signal, { what: 'log in' }, true)).refreshToken;
    }
    // Authenticate against the bare registry (no repository scope), as `docker login` does.
    const res = await this.request({ method: 'GET', path: '/v2/' }, [], signal, { what: 'log in' });
    await res.body.dump().catch(() => undefined);
    if (res.status !== 200) throw errorForStatus(res.status, '', { registry: this.registry, what: 'log in' });
    return identityToken ? { identityToken } : {};
  }

  /**
   * Sends an authorized request for `scopes` (`repository:team/app:pull`) and returns the
   * response, whatever its status, except that 401 is retried once with fresh authorization.
   */
  async request(req: ApiRequest, scopes: readonly string[], signal: AbortSignal, where: { repository?: string; what: string }, opts: { retry?: boolean } = {}): Promise<HttpResponse> {
    const { base, challenge } = await this.#pingOnce(signal);
    const url = req.url ?? base + req.path!;
    let auth = challenge ? await this.#authorization(challenge, scopes, signal, where, false) : undefined;
    for (let attempt = 0; ; attempt++) {
      const res = await this.#transport.send(
        { method: req.method, url, headers: { ...req.headers, ...(auth ? { authorization: auth } : {}) }, body: req.body },
        signal,
        { retry: opts.retry, insecureTls: this.#skipVerify, registry: this.registry },
      );
      if (res.status !== 401 || attempt > 0) return res;
      const fresh = parseWwwAuthenticate(headerAll(res.headers, 'www-authenticate').join(', '))[0];
      if (!fresh) return res;
      await res.body.dump().catch(() => undefined);
      auth = await this.#authorization(fresh, scopes, signal, where, true);
      if (auth === undefined) throw errorForStatus(401, '', { registry: this.registry, repository: where.repository, what: where.what });
    }
  }

  /**
   * A failure while reading a response body (timeout, reset, early end) as a RegistryError that
   * names this registry and what was being done; BuildErrors and aborts pass through as they are.
   */
  bodyError(e: unknown, where: { repository?: string; what: string }): unknown {
    if (e instanceof BuildError || isAbortError(e)) return e;
    return new RegistryError('REGISTRY', `${where.what}: registry ${this.registry}: ${transferFailure(e, this.#transport.timeouts)}`, {
      registry: this.registry,
      repository: where.repository,
      cause: e,
    });
  }

  #pingOnce(signal: AbortSignal): Promise<{ base: string; challenge?: AuthChallenge }> {
    this.#ping ??= this.#doPing(signal).catch((e) => {
      this.#ping = undefined;
      throw e;
    });
    return this.#ping;
  }

  async #doPing(signal: AbortSignal): Promise<{ base: string; challenge?: AuthChallenge }> {
    const api = apiHostFor(this.registry);
    const bases = this.#insecure ? [`https://${api}`, `http://${api}`] : [`https://${api}`];
    let lastErr: unknown;
    for (const base of bases) {
      let res: HttpResponse;
      try {
        // An insecure registry that only speaks HTTP fails the TLS handshake: no point retrying that.
        res = await this.#transport.send({ method: 'GET', url: `${base}/v2/` }, signal, { retry: base.startsWith('http:') || !this.#insecure, insecureTls: this.#skipVerify, registry: this.registry });
      } catch (e) {
        if (!(e instanceof RegistryError) || e.status !== undefined) throw e;
        // A certificate that does not verify is an answer, not an absent TLS server: falling back
        // to plain HTTP would only hide it behind a confusing 400.
        const cert = certificateError(e);
        if (cert) {
          throw new RegistryError('REGISTRY', `TLS certificate of registry ${this.registry} is not trusted: ${cert}`, {
            registry: this.registry,
            cause: e,
            hint: `to use a registry with a self-signed certificate, list it in tsbuild.toml: [registry."${this.registry}"] insecure = true`,
          });
        }
        // A stalled server gives the same answer over plain HTTP; its timeout says it best.
        if (timeoutDescription(e, this.#transport.timeouts) && base.startsWith('http:')) throw e;
        lastErr = e;
        continue;
      }
      await res.body.dump().catch(() => undefined);
      if (res.status === 200) return { base };
      if (res.status === 401) {
        const challenge = parseWwwAuthenticate(headerAll(res.headers, 'www-authenticate').join(', '))[0];
        return { base, ...(challenge ? { challenge } : {}) };
      }
      throw errorForStatus(res.status, '', { registry: this.registry, what: 'ping /v2/' });
    }
    throw new RegistryError('REGISTRY', `cannot reach registry ${this.registry}: ${(lastErr as Error).message}`, {
      registry: this.registry,
      temporary: true,
      cause: lastErr,
      hint: this.#insecure ? undefined : 'a registry that only speaks plain HTTP must be listed as insecure in tsbuild.toml',
    });
  }

  async #authorization(challenge: AuthChallenge, scopes: readonly string[], signal: AbortSignal, where: { repository?: string; what: string }, refresh: boolean): Promise<string | undefined> {
    if (challenge.scheme === 'basic') {
      const cred = await this.#getCredential();
      if (!cred) throw this.#authRequired(where);
      if (!('username' in cred)) throw new BuildError('REGISTRY_AUTH', `registry ${this.registry} asks for a password, but the stored credential is an identity token`);
      return 'Basic ' + Buffer.from(`${cred.username}:${cred.password}`).toString('base64');
    }
    if (challenge.scheme !== 'bearer') {
      throw new RegistryError('REGISTRY_AUTH', `registry ${this.registry} asks for unsupported authentication scheme ${JSON.stringify(challenge.scheme)}`, { registry: this.registry });
    }
    // The challenge may name the scope it wants (e.g. after insufficient_scope); include it.
    const all = [...new Set([...scopes, ...(challenge.params.scope ? challenge.params.scope.split(' ') : [])])].sort();
    const key = all.join(' ');
    const cached = this.#tokens.get(key);
    if (!refresh && cached && cached.expires > Date.now()) return `Bearer ${cached.token}`;
    this.#tokens.delete(key);
    const { token } = await this.#fetchToken(challenge, all, signal, where, false);
    return `Bearer ${token}`;
  }

  /** A token for `scopes`; with `offline`, password logins ask for a refresh token too (`offline_token=true`). */
  async #fetchToken(challenge: AuthChallenge, scopes: readonly string[], signal: AbortSignal, where: { repository?: string; what: string }, offline: boolean): Promise<{ token: string; refreshToken?: string }> {
    const realm = challenge.params.realm;
    if (!realm) throw new RegistryError('REGISTRY_AUTH', `registry ${this.registry} sent a Bearer challenge without a realm`, { registry: this.registry });
    const cred = await this.#getCredential();
    const q = new URLSearchParams();
    if (challenge.params.service) q.set('service', challenge.params.service);
    for (const s of scopes) q.append('scope', s);
    let res: HttpResponse;
    const send = { retry: true, insecureTls: this.#skipVerify, registry: this.registry };
    if (cred && 'identityToken' in cred) {
      q.set('grant_type', 'refresh_token');
      q.set('refresh_token', cred.identityToken);
      q.set('client_id', 'tsbuild');
      const body = q.toString();
      res = await this.#transport.send({ method: 'POST', url: realm, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: () => body }, signal, send);
    } else {
      if (offline && cred) {
        q.set('offline_token', 'true');
        q.set('client_id', 'tsbuild');
      }
      const headers: Record<string, string> = cred ? { authorization: 'Basic ' + Buffer.from(`${cred.username}:${cred.password}`).toString('base64') } : {};
      res = await this.#transport.send({ method: 'GET', url: `${realm}${realm.includes('?') ? '&' : '?'}${q}`, headers }, signal, send);
    }
    if (res.status !== 200) {
      const text = await readErrorBody(res.body);
      if (res.status === 401 || res.status === 403) {
        throw new RegistryError('REGISTRY_AUTH', `${where.what}: the token server of registry ${this.registry} refused ${cred ? 'the credentials' : 'anonymous access'} (HTTP ${res.status})${where.repository ? ` for repository ${where.repository}` : ''}`, {
          registry: this.registry,
          repository: where.repository,
          status: res.status,
          hint: cred ? `check the user name and password (tsbuild login ${this.registry})` : `log in with \`tsbuild login ${this.registry}\``,
        });
      }
      throw errorForStatus(res.status, text, { registry: this.registry, repository: where.repository, what: `${where.what}: fetch token from ${realm}` });
    }
    const tokenWhere = { repository: where.repository, what: `${where.what}: fetch token from ${realm}` };
    const text = await readBounded(res.body, BODY_LIMITS.token, () =>
      new RegistryError('REGISTRY_AUTH', `${tokenWhere.what}: the token server of registry ${this.registry} sent a token response over ${formatBytes(BODY_LIMITS.token)}; the connection was dropped`, { registry: this.registry, repository: where.repository }),
    ).then(
      (b) => b.toString('utf8'),
      (e: unknown) => {
        throw this.bodyError(e, tokenWhere);
      },
    );
    let j: { token?: string; access_token?: string; expires_in?: number; refresh_token?: string };
    try {
      j = JSON.parse(text) as typeof j;
    } catch (e) {
      throw new RegistryError('REGISTRY_AUTH', `token server ${realm} of registry ${this.registry} returned invalid JSON`, { registry: this.registry, cause: e });
    }
    const token = j.token ?? j.access_token;
    if (!token) throw new RegistryError('REGISTRY_AUTH', `token server ${realm} of registry ${this.registry} returned no token`, { registry: this.registry });
    // The spec's default lifetime is 60 s; renew a little early.
    const lifetime = typeof j.expires_in === 'number' && j.expires_in > 0 ? j.expires_in : 60;
    this.#tokens.set(scopes.join(' '), { token, expires: Date.now() + Math.max(1, lifetime - 10) * 1000 });
    return typeof j.refresh_token === 'string' && j.refresh_token ? { token, refreshToken: j.refresh_token } : { token };
  }

  #getCredential(): Promise<Credential | undefined> {
    this.#credential ??= this.#credentials ? this.#credentials.get(this.registry) : Promise.resolve(undefined);
    return this.#credential;
  }

  #authRequired(where: { repository?: string; what: string }): RegistryError {
    return new RegistryError('REGISTRY_AUTH', `${where.what}: registry ${this.registry} requires authentication and no credentials are stored for it`, {
      registry: this.registry,
      repository: where.repository,
      hint: `log in with \`tsbuild login ${this.registry}\``,
    });
  }
}


import { spawn } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { BuildError } from '../errors.js';
import { writeFileAtomic } from '../oci/image-layout.js';
import { childEnv } from './extra-ca-certs.js';

/** What a registry login yields: a user and password, or an OAuth identity (refresh) token. */
export type Credential = { readonly username: string; readonly password: string } | { readonly identityToken: string };

/** Where the client gets credentials for a registry host (`127.0.0.1:5000`, `docker.io`). */
export interface CredentialSource {
  get(registry: string): Promise<Credential | undefined>;
}

/** The key docker uses in config.json for Docker Hub. */
const DOCKER_HUB_KEY = 'https://index.docker.io/v1/';

interface DockerConfigFile {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
  [k: string]: unknown;
}

/** `https://host:port/v1/` or `host` → `host:port`; `index.docker.io`/`registry-1.docker.io` → `docker.io`. */
export function normalizeRegistryKey(key: string): string {
  let host = key.replace(/^[a-z]+:\/\//i, '');
  const slash = host.indexOf('/');
  if (slash >= 0) host = host.slice(0, slash);
  if (host === 'index.docker.io' || host === 'registry-1.docker.io') return 'docker.io';
  return host;
}

/**
 * Docker's `config.json` (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`; the caller
 * picks the path): `auths` entries (base64 `user:password`, or `identitytoken`), a global
 * `credsStore` and per-registry `credHelpers` run as `docker-credential-<name>` with the helper
 * protocol (get/store/erase over stdin/stdout). A missing file means no credentials. Writes go
 * through a temp file and rename, and keep every key tsbuild does not know.
 */
export class DockerConfigCredentials implements CredentialSource {
  readonly path: string;

  constructor(path: string) {
    this.path = path;
  }

  async get(registry: string): Promise<Credential | undefined> {
    const cfg = await this.#read();
    const host = normalizeRegistryKey(registry);
    const helper = this.#helperFor(cfg, host);
    if (helper) return helperGet(helper, serverUrl(host));
    for (const [key, entry] of Object.entries(cfg.auths ?? {})) {
      if (normalizeRegistryKey(key) !== host) continue;
      if (entry.identitytoken) return { identityToken: entry.identitytoken };
      if (entry.auth) {
        const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
        const colon = decoded.indexOf(':');
        if (colon < 0) throw new BuildError('REGISTRY_AUTH', `${this.path}: the auth entry for ${key} is not base64 of user:password`);
        return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
      }
      if (entry.username !== undefined && entry.password !== undefined) return { username: entry.username, password: entry.password };
    }
    return undefined;
  }

  /**
   * Saves a login: through the credential helper when one is configured, else in `auths`. With
   * an identity token (from a token server's refresh token) the password is not kept: docker's
   * format is `auth: base64("user:")` plus `identitytoken`, or user `<token>` for a helper.
   */
  async store(registry: string, cred: { username: string; password: string } | { username: string; identityToken: string }): Promise<void> {
    const cfg = await this.#read();
    const host = normalizeRegistryKey(registry);
    const helper = this.#helperFor(cfg, host);
    if (helper) {
      const secret = 'identityToken' in cred ? { Username: '<token>', Secret: cred.identityToken } : { Username: cred.username, Secret: cred.password };
      await runHelper(helper, 'store', JSON.stringify({ ServerURL: serverUrl(host), ...secret }));
      return;
    }
    const auths = { ...(cfg.auths ?? {}) };
    for (const key of Object.keys(auths)) if (normalizeRegistryKey(key) === host) delete auths[key];
    auths[serverUrl(host)] =
      'identityToken' in cred
        ? { auth: Buffer.from(`${cred.username}:`).toString('base64'), identitytoken: cred.identityToken }
        : { auth: Buffer.from(`${cred.username}:${cred.password}`).toString('base64') };
    await this.#write({ ...cfg, auths });
  }

  /** Forgets a login; returns whether there was one. */
  async erase(registry: string): Promise<boolean> {
    const cfg = await this.#read();
    const host = normalizeRegistryKey(registry);
    const helper = this.#helperFor(cfg, host);
    if (helper) {
      await runHelper(helper, 'erase', serverUrl(host));
      return true;
    }
    const auths = { ...(cfg.auths ?? {}) };
    let found = false;
    for (const key of Object.keys(auths)) {
      if (normalizeRegistryKey(key) === host) {
        delete auths[key];
        found = true;
      }
    }
    if (found) await this.#write({ ...cfg, auths });
    return found;
  }

  #helperFor(cfg: DockerConfigFile, host: string): string | undefined {
    for (const [key, name] of Object.entries(cfg.credHelpers ?? {})) if (normalizeRegistryKey(key) === host) return name;
    return cfg.credsStore || undefined;
  }

  async #read(): Promise<DockerConfigFile> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw e;
    }
    try {
      const cfg = JSON.parse(text) as unknown;
      if (typeof cfg !== 'object' || cfg === null || Array.isArray(cfg)) throw new Error('not a JSON object');
      return cfg as DockerConfigFile;
    } catch (e) {
      throw new BuildError('REGISTRY_AUTH', `${this.path} is not valid JSON: ${(e as Error).message}`, { cause: e });
    }
  }

  async #write(cfg: DockerConfigFile): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
    await writeFileAtomic(this.path, JSON.stringify(cfg, null, '\t') + '\n');
  }
}

/** Docker Hub's credentials live under its legacy v1 URL; every other registry under its host. */
function serverUrl(host: string): string {
  return host === 'docker.io' ? DOCKER_HUB_KEY : host;
}

async function helperGet(helper: string, server: string): Promise<Credential | undefined> {
  let out: string;
  try {
    out = await runHelper(helper, 'get', server);
  } catch (e) {
    // The protocol reports "no credentials" as a failure whose output says so.
    if (/credentials not found/i.test((e as Error).message)) return undefined;
    throw e;
  }
  const j = JSON.parse(out) as { Username?: string; Secret?: string };
  if (!j.Secret) return undefined;
  // A helper stores an identity token under the user name "<token>".
  if (j.Username === '<token>') return { identityToken: j.Secret };
  return { username: j.Username ?? '', password: j.Secret };
}

/** Runs `docker-credential-<helper> <action>` with `input` on stdin; resolves with stdout. */
function runHelper(helper: string, action: 'get' | 'store' | 'erase', input: string): Promise<string> {
  const cmd = `docker-credential-${helper}`;
  return new Promise((resolve, reject) => {
    // A helper may be a node program: it gets NODE_EXTRA_CA_CERTS as the user set it.
    const child = spawn(cmd, [action], { stdio: ['pipe', 'pipe', 'pipe'], env: childEnv() });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', (e) =>
      reject(new BuildError('REGISTRY_AUTH', `credential helper ${cmd} could not be run: ${e.message}`, { cause: e, hint: `install ${cmd} or remove it from config.json` })),
    );
    child.on('close', (code) => {
      if (code === 0) resolve(stdout.trim());
      else reject(new BuildError('REGISTRY_AUTH', `credential helper ${cmd} ${action} failed (exit ${code}): ${(stdout + stderr).trim()}`));
    });
    child.stdin.end(input);
  });
}

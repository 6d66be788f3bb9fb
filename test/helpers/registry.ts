import type { Test } from 'uvu';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, createPrivateKey, createPublicKey, sign } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, request as httpRequest, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer, connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { execFile } from 'node:child_process';

const pexec = promisify(execFile);

/** A docker-registry (Debian package) this test process started on 127.0.0.1. */
export interface TestRegistry {
  /** `127.0.0.1:PORT`, the reference domain. */
  readonly host: string;
  readonly dir: string;
  /** Where the registry keeps blob data: `<dataDir>/docker/registry/v2/blobs/sha256/xx/<hex>/data`. */
  readonly dataDir: string;
  stop(): Promise<void>;
}

/** A free TCP port on 127.0.0.1 (bind to 0, read, close). */
export async function freePort(): Promise<number> {
  const srv = createNetServer();
  await new Promise<void>((res) => srv.listen(0, '127.0.0.1', res));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((res) => srv.close(() => res()));
  return port;
}

export type RegistryAuth =
  | { kind: 'none' }
  | { kind: 'htpasswd'; user: string; password: string }
  | { kind: 'token'; realm: string; service: string; issuer: string; certFile: string };

/**
 * Starts docker-registry with a generated config and a temp storage dir; waits until /v2/ answers.
 * With `tls`, it serves https with that certificate and key (PEM files) instead of plain HTTP.
 */
export async function startRegistry(auth: RegistryAuth = { kind: 'none' }, opts: { tls?: { certFile: string; keyFile: string } } = {}): Promise<TestRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'tsbuild-registry-'));
  const dataDir = join(dir, 'data');
  const port = await freePort();
  let authYaml = '';
  if (auth.kind === 'htpasswd') {
    const { stdout } = await pexec('python3', ['-W', 'ignore', '-c', 'import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))', auth.password]);
    await writeFile(join(dir, 'htpasswd'), `${auth.user}:${stdout.trim()}\n`);
    authYaml = `auth:\n  htpasswd:\n    realm: test\n    path: ${join(dir, 'htpasswd')}\n`;
  } else if (auth.kind === 'token') {
    authYaml = `auth:\n  token:\n    realm: ${auth.realm}\n    service: ${auth.service}\n    issuer: ${auth.issuer}\n    rootcertbundle: ${auth.certFile}\n`;
  }
  const tlsYaml = opts.tls ? `  tls:\n    certificate: ${opts.tls.certFile}\n    key: ${opts.tls.keyFile}\n` : '';
  const config = `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${dataDir}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${port}\n${tlsYaml}${authYaml}`;
  await writeFile(join(dir, 'config.yml'), config);
  const child: ChildProcess = spawn('docker-registry', ['serve', join(dir, 'config.yml')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<void>((res) => child.once('exit', () => res()));
  const host = `127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited: ${stderr}`);
    // Readiness only: a TCP connect is enough, and works for http and https alike.
    const ok = await new Promise<boolean>((res) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), res(true)));
      s.once('error', () => res(false));
    });
    if (ok) break;
    if (i > 100) throw new Error(`docker-registry did not start: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    host,
    dir,
    dataDir,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Path of a blob's bytes in the registry's filesystem storage (to tamper with it in tests). */
export function registryBlobPath(reg: TestRegistry, digest: string): string {
  const hex = digest.slice('sha256:'.length);
  return join(reg.dataDir, 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
}

/** A token server of our own: Basic-authenticates one user, grants every requested scope, signs ES256 JWTs. */
export interface TokenServer {
  readonly realm: string;
  readonly service: string;
  readonly issuer: string;
  readonly certFile: string;
  /** Requests served, by outcome. */
  readonly stats: { issued: number; refused: number; scopes: string[]; refreshGrants: number; passwordGrants: number };
  stop(): Promise<void>;
}

/** With `refreshTokens`, a password request with `offline_token=true` also gets a refresh token, later accepted by POST. */
export async function startTokenServer(user: string, password: string, opts: { refreshTokens?: boolean } = {}): Promise<TokenServer> {
  const dir = await mkdtemp(join(tmpdir(), 'tsbuild-token-'));
  const keyFile = join(dir, 'key.pem');
  const certFile = join(dir, 'cert.pem');
  await pexec('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=tsbuild-test-token']);
  const key = createPrivateKey(await readFile(keyFile));
  const kid = libtrustKeyId(createPublicKey(key).export({ type: 'spki', format: 'der' }));
  const service = 'tsbuild-test-registry';
  const issuer = 'tsbuild-test-issuer';
  const stats = { issued: 0, refused: 0, scopes: [] as string[], refreshGrants: 0, passwordGrants: 0 };
  // Refresh tokens handed out for `offline_token=true`, as docker's token servers do at login.
  const refreshTokens = new Set<string>();
  const issue = (res: ServerResponse, params: URLSearchParams, extra: Record<string, string> = {}) => {
    const scopes = params.getAll('scope').flatMap((s) => s.split(' ')).filter((s) => s !== '');
    stats.scopes.push(...scopes);
    const access = scopes.map((s) => {
      const [type, ...rest] = s.split(':');
      const actions = rest.pop()!.split(',');
      return { type, name: rest.join(':'), actions };
    });
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'ES256', kid };
    const claims = { iss: issuer, sub: user, aud: params.get('service'), exp: now + 300, nbf: now - 10, iat: now, jti: String(Math.random()), access };
    const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const signing = `${b64(header)}.${b64(claims)}`;
    const sig = sign('sha256', Buffer.from(signing), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url');
    stats.issued++;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: `${signing}.${sig}`, expires_in: 300, ...extra }));
  };
  const refuse = (res: ServerResponse) => {
    stats.refused++;
    res.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"bad credentials"}');
  };
  const server: Server = createHttpServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.method === 'POST') {
      // OAuth2 refresh-token grant (what a client with a stored identity token sends).
      let body = '';
      req.on('data', (b: Buffer) => (body += b.toString()));
      req.on('end', () => {
        const form = new URLSearchParams(body);
        if (form.get('grant_type') !== 'refresh_token' || !refreshTokens.has(form.get('refresh_token') ?? '')) return refuse(res);
        stats.refreshGrants++;
        issue(res, form);
      });
      return;
    }
    const authz = req.headers.authorization ?? '';
    const expected = 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64');
    if (authz !== expected) return refuse(res);
    stats.passwordGrants++;
    if (opts.refreshTokens && url.searchParams.get('offline_token') === 'true') {
      const refresh = `refresh-${Math.random().toString(36).slice(2)}`;
      refreshTokens.add(refresh);
      return issue(res, url.searchParams, { refresh_token: refresh });
    }
    issue(res, url.searchParams);
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  const port = (server.address() as { port: number }).port;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    certFile,
    stats,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((res) => server.close(() => res()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** libtrust's key ID, which docker-registry uses to find the key named by a JWT's `kid`. */
function libtrustKeyId(spkiDer: Buffer): string {

  const hash = createHash('sha256').update(spkiDer).digest().subarray(0, 30);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of hash) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out.match(/.{4}/g)!.join(':');
}


/** A TCP proxy to `target` that, once, cuts a connection after it has carried `dropAfter` bytes upstream. */
export interface DroppingProxy {
  readonly host: string;
  readonly drops: number;
  stop(): Promise<void>;
}

export async function startDroppingProxy(target: string, dropAfter: number): Promise<DroppingProxy> {
  const [thost, tport] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  const sockets = new Set<Socket>();
  let drops = 0;
  const server = createNetServer((client) => {
    const upstream = connect(tport, thost);
    sockets.add(client);
    sockets.add(upstream);
    let sent = 0;
    client.on('data', (chunk: Buffer) => {
      sent += chunk.length;
      if (drops === 0 && sent > dropAfter) {
        drops++;
        client.destroy();
        upstream.destroy();
        return;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    const close = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('close', close).on('error', close);
    upstream.on('close', close).on('error', close);
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  const port = (server.address() as { port: number }).port;
  return {
    host: `127.0.0.1:${port}`,
    get drops() {
      return drops;
    },
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((res) => server.close(() => res()));
    },
  };
}


/** An HTTP proxy to `target` that counts blob uploads and, with `refusePatch`, answers every PATCH with 405, as registries without chunked uploads do. */
export interface UploadProxy {
  readonly host: string;
  /** PATCH requests refused, PUT requests that carried a body (monolithic uploads), uploads started (POST …/blobs/uploads/). */
  readonly stats: { refusedPatches: number; monolithicPuts: number; uploadStarts: number };
  stop(): Promise<void>;
}
export type NoChunksProxy = UploadProxy;

export function startNoChunksProxy(target: string): Promise<UploadProxy> {
  return startUploadProxy(target, { refusePatch: true });
}

export async function startUploadProxy(target: string, opts: { refusePatch?: boolean } = {}): Promise<UploadProxy> {
  const stats = { refusedPatches: 0, monolithicPuts: 0, uploadStarts: 0 };
  const server: Server = createHttpServer((req, res) => {
    if (req.method === 'PATCH' && opts.refusePatch) {
      stats.refusedPatches++;
      req.resume();
      res.writeHead(405, { 'content-type': 'application/json' }).end('{"errors":[{"code":"UNSUPPORTED","message":"chunked uploads are not supported"}]}');
      return;
    }
    if (req.method === 'POST' && /\/blobs\/uploads\/?(\?|$)/.test(req.url ?? '')) stats.uploadStarts++;
    if (req.method === 'PUT' && Number(req.headers['content-length'] ?? 0) > 0 && (req.url ?? '').includes('/blobs/uploads/')) stats.monolithicPuts++;
    // The Host header passes through unchanged, so the registry's absolute Locations point back here.
    const up = httpRequest(`http://${target}${req.url}`, { method: req.method, headers: req.headers }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  const port = (server.address() as { port: number }).port;
  return {
    host: `127.0.0.1:${port}`,
    stats,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((res) => server.close(() => res()));
    },
  };
}

/** Registers a suite's hooks for one open registry on 127.0.0.1: started before, stopped after. */
export function useRegistry(test: Test): { readonly host: string } {
  let reg: TestRegistry | undefined;
  test.before(async () => {
    reg = await startRegistry();
  });
  test.after(async () => {
    await reg?.stop();
  });
  return {
    get host() {
      if (!reg) throw new Error('the registry is started in the suite\'s before hook');
      return reg.host;
    },
  };
}

import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import { gzipSync } from 'node:zlib';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { CLI } from '../helpers/cli.js';
import { respond, startHostileServer, statusHead, streamForever, type HostileServer, type RawRequest } from '../helpers/hostile-server.js';
import { verifyStore } from '../helpers/verify-store.js';

/**
 * Every registry and web server is hostile: one that never answers, stalls mid-body, cuts a
 * layer short, lies about Content-Length, streams forever, asks to retry in an hour or sends an
 * endless token. Each must fail `tsbuild pull`, a build FROM it and an ADD of its URL quickly
 * (the config sets 1 s timeouts), with exit 1, one clear line naming the server, no stack trace,
 * no temp file, a store that still verifies, and bounded memory.
 */
const test = suite('hostile registries and http servers');

/** Wall time any one failing command may take: the 1 s timeouts plus Node's start-up on a busy machine. */
const MAX_MS = 12_000;
/** Peak RSS of a tsbuild process reading an endless body: Node alone is ~60 MiB. */
const MAX_RSS_KIB = 300 * 1024;

const state = { work: '', config: '' };
const servers: HostileServer[] = [];

test.before(async () => {
  state.work = await mkdtemp(join(tmpdir(), 'tsbuild-hostile-'));
  state.config = join(state.work, 'tsbuild.toml');
  await writeFile(state.config, '[network]\nconnect-timeout = "1s"\nresponse-timeout = "1s"\nidle-timeout = "1s"\nretry-budget = "3s"\n');
});

test.after.each(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

test.after(async () => {
  await rm(state.work, { recursive: true, force: true });
});

/** A small valid image: one gzip layer holding hello.txt. `layer` replaces the layer's bytes (its digest follows). */
function makeImage(layer?: Buffer): { manifest: Buffer; blobs: Map<string, Buffer>; layer: Buffer } {
  const dir = execFileSync('mktemp', ['-d']).toString().trim();
  execFileSync('sh', ['-c', `echo hello > ${dir}/hello.txt`]);
  const tar = execFileSync('tar', ['-c', '-C', dir, 'hello.txt']);
  execFileSync('rm', ['-rf', dir]);
  const gz = layer ?? gzipSync(tar);
  const arch = process.arch === 'x64' ? 'amd64' : process.arch;
  const config = Buffer.from(JSON.stringify({ architecture: arch, os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [digest(tar)] } }));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digest(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: digest(gz), size: gz.length }],
    }),
  );
  return { manifest, blobs: new Map([[digest(config), config], [digest(gz), gz]]), layer: gz };
}

function digest(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

/**
 * A registry serving `image` as `hostile:1` over plain HTTP, except where `misbehave` takes the
 * request (returns true); https probes get garbage back, so the client falls back to HTTP.
 */
async function hostileRegistry(image: ReturnType<typeof makeImage>, misbehave: (req: RawRequest, socket: Socket) => boolean): Promise<HostileServer> {
  const s = await startHostileServer((req, socket) => {
    if (misbehave(req, socket)) return;
    if (req.path === '/v2/') return respond(socket, 200, { 'content-type': 'application/json' }, '{}');
    if (req.path === '/v2/hostile/manifests/1') return respond(socket, 200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, image.manifest);
    const blob = /^\/v2\/hostile\/blobs\/(sha256:[0-9a-f]{64})$/.exec(req.path);
    const bytes = blob && image.blobs.get(blob[1]!);
    if (bytes) return respond(socket, 200, { 'content-type': 'application/octet-stream' }, bytes);
    respond(socket, 404, { 'content-type': 'application/json' }, '{"errors":[{"code":"NOT_FOUND"}]}');
  });
  servers.push(s);
  return s;
}

/** A web server for ADD: `misbehave` gets every request. */
async function hostileWeb(misbehave: (req: RawRequest, socket: Socket) => void): Promise<HostileServer> {
  const s = await startHostileServer(misbehave);
  servers.push(s);
  return s;
}

interface Run {
  readonly code: number | null;
  readonly stderr: string;
  readonly ms: number;
  readonly rssKiB: number;
  readonly root: string;
  readonly tmp: string;
}

/** Runs tsbuild with the test config and a fresh root under GNU time; kills it after 20 s (a hang fails the test, not the suite). */
async function tsbuild(args: readonly string[], cwd?: string): Promise<Run> {
  const root = await mkdtemp(join(state.work, 'root-'));
  const tmp = await mkdtemp(join(state.work, 'tmp-'));
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-f', 'TSBUILD_MAXRSS_KIB=%M', process.execPath, CLI, '--config', state.config, '--root', root, ...args], {
      cwd: cwd ?? state.work,
      env: { ...process.env, NO_COLOR: '1', TMPDIR: tmp, TSBUILD_CONFIG: '' },
      stdio: ['ignore', 'ignore', 'pipe'],
      // Its own process group, so a hang is killed whole: GNU time and the tsbuild under it.
      detached: true,
    });
    const kill = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 20_000);
    let stderr = '';
    child.stderr.on('data', (b) => (stderr += b));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(kill);
      const rss = /TSBUILD_MAXRSS_KIB=(\d+)/.exec(stderr);
      // GNU time's own lines are not tsbuild's output.
      const own = stderr
        .split('\n')
        .filter((l) => !/^TSBUILD_MAXRSS_KIB=|^Command (exited with non-zero status|terminated by signal)/.test(l))
        .join('\n');
      resolve({ code: /terminated by signal/.test(stderr) ? null : code, stderr: own, ms: Date.now() - started, rssKiB: rss ? Number(rss[1]) : 0, root, tmp });
    });
  });
}

/** What every failure here must look like; `message` must appear on the `error:` line. */
async function assertCleanFailure(r: Run, message: RegExp, code = 1): Promise<void> {
  const context = `\n--- stderr ---\n${r.stderr}`;
  if (process.env.HOSTILE_DEBUG) console.log(`${r.ms} ms ${r.rssKiB} KiB store=${await readdir(join(r.root, 'store')).then(() => 'yes', () => 'no')}: ${r.stderr.split('\n').find((l) => l.startsWith('error: '))}`);
  assert.is(r.code, code, `exit code ${code} (got ${r.code} after ${r.ms} ms)${context}`);
  const errorLine = r.stderr.split('\n').find((l) => l.startsWith('error: '));
  assert.ok(errorLine, `an error: line${context}`);
  assert.match(errorLine!, message, `the error line names the problem${context}`);
  assert.not.match(r.stderr, /^\s+at .+:\d+:\d+\)?$/m, `no stack trace${context}`);
  assert.ok(r.ms < MAX_MS, `failed within ${MAX_MS} ms (took ${r.ms})${context}`);
  assert.ok(r.rssKiB > 0 && r.rssKiB < MAX_RSS_KIB, `peak RSS ${r.rssKiB} KiB under ${MAX_RSS_KIB} KiB`);
  // A command that failed before opening the store leaves none to verify, but still no temp file.
  const hasStore = await readdir(join(r.root, 'store')).then(() => true, () => false);
  if (hasStore) assert.equal(await verifyStore(r.root), [], 'store verifies, no temp file left');
  else assert.equal(await readdir(join(r.root, 'tmp')).catch(() => []), [], 'no temp file left in the root');
  assert.equal(await readdir(r.tmp), [], 'nothing left in $TMPDIR');
}

async function pull(s: HostileServer): Promise<Run> {
  return tsbuild(['pull', `${s.host}/hostile:1`]);
}

async function buildFrom(s: HostileServer): Promise<Run> {
  const ctx = await mkdtemp(join(state.work, 'ctx-'));
  await writeFile(join(ctx, 'Dockerfile'), `FROM ${s.host}/hostile:1\n`);
  return tsbuild(['build', '--progress', 'plain', ctx]);
}

async function addUrl(url: string): Promise<Run> {
  const ctx = await mkdtemp(join(state.work, 'ctx-'));
  await writeFile(join(ctx, 'Dockerfile'), `FROM scratch\nADD ${url} /file\n`);
  return tsbuild(['build', '--progress', 'plain', ctx]);
}

const re = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

test('(a) a server that accepts connections and never answers', async () => {
  const s = await hostileWeb(() => undefined);
  const host = re(s.host);
  const answer = `(no response within 1s|could not connect within 1s)`;
  await assertCleanFailure(await pull(s), new RegExp(`registry ${host}.*${answer}|${answer}.*${host}`));
  await assertCleanFailure(await buildFrom(s), new RegExp(`${host}.*${answer}`));
  await assertCleanFailure(await addUrl(`http://${s.host}/file`), new RegExp(`failed to download http://${host}/file: no response within 1s`));
});

test('(b) headers, then the body stalls: manifest, layer blob, ADD', async () => {
  const image = makeImage();
  const stallManifest = await hostileRegistry(image, (req, socket) => {
    if (!req.path.includes('/manifests/')) return false;
    socket.write(statusHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'content-length': String(image.manifest.length) }));
    socket.write(image.manifest.subarray(0, 20));
    return true;
  });
  await assertCleanFailure(await pull(stallManifest), new RegExp(`registry ${re(stallManifest.host)}: no data for 1s`));
  const layerDigest = digest(image.layer);
  const stallLayer = await hostileRegistry(image, (req, socket) => {
    if (!req.path.endsWith(layerDigest)) return false;
    socket.write(statusHead(200, { 'content-length': String(image.layer.length) }));
    socket.write(image.layer.subarray(0, 10));
    return true;
  });
  await assertCleanFailure(await pull(stallLayer), new RegExp(`pull blob ${layerDigest}: registry ${re(stallLayer.host)}: no data for 1s`));
  await assertCleanFailure(await buildFrom(stallLayer), new RegExp(`registry ${re(stallLayer.host)}: no data for 1s`));
  const web = await hostileWeb((_req, socket) => {
    socket.write(statusHead(200, { 'content-length': '100000' }));
    socket.write('partial');
  });
  await assertCleanFailure(await addUrl(`http://${web.host}/file`), new RegExp(`failed to download http://${re(web.host)}/file: no data for 1s`));
});

test('(c) a layer cut short mid-gzip: the connection closes early, or the registry serves truncated gzip', async () => {
  const image = makeImage();
  const layerDigest = digest(image.layer);
  const cut = await hostileRegistry(image, (req, socket) => {
    if (!req.path.endsWith(layerDigest)) return false;
    socket.end(Buffer.concat([Buffer.from(statusHead(200, { 'content-length': String(image.layer.length) })), image.layer.subarray(0, image.layer.length >> 1)]));
    return true;
  });
  await assertCleanFailure(await pull(cut), new RegExp(`pull blob ${layerDigest}: registry ${re(cut.host)}: the server closed the connection before the body was complete`));
  await assertCleanFailure(await buildFrom(cut), new RegExp(`registry ${re(cut.host)}: the server closed the connection`));
  // The digest matches the truncated bytes: the pull succeeds, unpacking for the build must fail cleanly.
  const truncated = makeImage(makeImage().layer.subarray(0, 40));
  const gz = await hostileRegistry(truncated, () => false);
  await assertCleanFailure(await buildFrom(gz), /unexpected end of file|truncated|corrupt|gzip/i);
  const web = await hostileWeb((_req, socket) => {
    socket.end(statusHead(200, { 'content-length': '100000' }) + 'only a little');
  });
  await assertCleanFailure(await addUrl(`http://${web.host}/file`), new RegExp(`failed to download http://${re(web.host)}/file: the server closed the connection before the body was complete`));
});

test('a connection reset mid-blob, and a blob whose bytes do not match its digest', async () => {
  const image = makeImage();
  const layerDigest = digest(image.layer);
  const reset = await hostileRegistry(image, (req, socket) => {
    if (!req.path.endsWith(layerDigest)) return false;
    socket.write(statusHead(200, { 'content-length': String(image.layer.length) }));
    socket.write(image.layer.subarray(0, 10), () => socket.resetAndDestroy());
    return true;
  });
  await assertCleanFailure(await pull(reset), new RegExp(`pull blob ${layerDigest}: registry ${re(reset.host)}: (the server closed the connection|.*ECONNRESET)`));
  const forged = await hostileRegistry(image, (req, socket) => {
    if (!req.path.endsWith(layerDigest)) return false;
    respond(socket, 200, {}, Buffer.alloc(image.layer.length, 1));
    return true;
  });
  await assertCleanFailure(await pull(forged), new RegExp(`pull blob ${layerDigest} from registry ${re(forged.host)} repository hostile: the content does not match its descriptor`));
});

test('(d) a blob whose Content-Length lies: 1 TiB announced, endless data, small descriptor', async () => {
  const image = makeImage();
  const layerDigest = digest(image.layer);
  const liar = await hostileRegistry(image, (req, socket) => {
    if (!req.path.endsWith(layerDigest)) return false;
    socket.write(statusHead(200, { 'content-length': String(2 ** 40) }));
    streamForever(socket, Buffer.alloc(64 * 1024, 7), { chunked: false });
    return true;
  });
  await assertCleanFailure(await pull(liar), new RegExp(`pull blob ${layerDigest}: registry ${re(liar.host)} repository hostile sent more than the ${image.layer.length} bytes its descriptor says`));
  // A manifest whose Content-Length is smaller than what follows: only the announced bytes are read.
  const short = await hostileRegistry(image, (req, socket) => {
    if (!req.path.includes('/manifests/')) return false;
    socket.write(statusHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'content-length': '10' }));
    streamForever(socket, Buffer.from('{"a":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'), { chunked: false });
    return true;
  });
  await assertCleanFailure(await pull(short), new RegExp(`registry ${re(short.host)} repository hostile sent a manifest that is not valid JSON`));
});

test('(e) an endless manifest, and an endless error body', async () => {
  const image = makeImage();
  const endless = await hostileRegistry(image, (req, socket) => {
    if (!req.path.includes('/manifests/')) return false;
    socket.write(statusHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'transfer-encoding': 'chunked' }));
    socket.write('6\r\n{"a":"\r\n');
    streamForever(socket, Buffer.alloc(64 * 1024, 'x'), { chunked: true });
    return true;
  });
  await assertCleanFailure(await pull(endless), new RegExp(`registry ${re(endless.host)} sent a manifest larger than 4.0 MiB`));
  await assertCleanFailure(await buildFrom(endless), new RegExp(`registry ${re(endless.host)} sent a manifest larger than 4.0 MiB`));
  const endlessError = await hostileRegistry(image, (req, socket) => {
    if (!req.path.includes('/manifests/')) return false;
    socket.write(statusHead(404, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' }));
    socket.write('b\r\n{"errors":[\r\n');
    streamForever(socket, Buffer.alloc(64 * 1024, ' '), { chunked: true });
    return true;
  });
  await assertCleanFailure(await pull(endlessError), new RegExp(`not found at registry ${re(endlessError.host)} repository hostile \\(HTTP 404\\)`));
});

test('(f) 503 with Retry-After: 3600 does not stall the build', async () => {
  const image = makeImage();
  const busy = await hostileRegistry(image, (req, socket) => {
    if (!req.path.includes('/manifests/')) return false;
    respond(socket, 503, { 'retry-after': '3600' }, 'come back later');
    return true;
  });
  await assertCleanFailure(await pull(busy), new RegExp(`registry ${re(busy.host)} repository hostile answered HTTP 503`));
  await assertCleanFailure(await buildFrom(busy), new RegExp(`registry ${re(busy.host)} repository hostile answered HTTP 503`));
  const web = await hostileWeb((_req, socket) => respond(socket, 503, { 'retry-after': '3600' }));
  await assertCleanFailure(await addUrl(`http://${web.host}/file`), new RegExp(`failed to download http://${re(web.host)}/file: invalid response status 503`));
});

test('(g) a token server that sends an endless token', async () => {
  const image = makeImage();
  const s: { host: string } = { host: '' };
  const tokens = await hostileRegistry(image, (req, socket) => {
    if (req.path === '/v2/' || req.path.startsWith('/v2/hostile/')) {
      if (req.headers.authorization) return false;
      respond(socket, 401, { 'www-authenticate': `Bearer realm="http://${s.host}/token",service="hostile"` }, '');
      return true;
    }
    if (!req.path.startsWith('/token')) return false;
    socket.write(statusHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' }));
    socket.write('a\r\n{"token":"\r\n');
    streamForever(socket, Buffer.alloc(64 * 1024, 'A'), { chunked: true });
    return true;
  });
  s.host = tokens.host;
  await assertCleanFailure(await pull(tokens), new RegExp(`the token server of registry ${re(tokens.host)} sent a token response over 1.0 MiB`));
});

test('a remote build context whose server stalls mid-body (a usage error, as other remote-context failures)', async () => {
  const web = await hostileWeb((_req, socket) => {
    socket.write(statusHead(200, { 'content-length': '1000000', 'content-type': 'application/x-tar' }));
    socket.write(Buffer.alloc(512));
  });
  const r = await tsbuild(['build', '--progress', 'plain', `http://${web.host}/context.tar`]);
  await assertCleanFailure(r, new RegExp(`context http://${re(web.host)}/context.tar: no data for 1s`), 2);
});

test('--cache-from a registry that streams an endless manifest: a warning, and the build goes on', async () => {
  const endless = await hostileRegistry(makeImage(), (req, socket) => {
    if (!req.path.includes('/manifests/')) return false;
    socket.write(statusHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'transfer-encoding': 'chunked' }));
    streamForever(socket, Buffer.alloc(64 * 1024, ' '), { chunked: true });
    return true;
  });
  const ctx = await mkdtemp(join(state.work, 'ctx-'));
  await writeFile(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY Dockerfile /\n');
  const r = await tsbuild(['build', '--progress', 'plain', '--cache-from', `type=registry,ref=${endless.host}/hostile:cache`, ctx]);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stderr, new RegExp(`cache not used: .*registry ${re(endless.host)} sent a manifest larger than 4.0 MiB`));
  assert.ok(r.ms < MAX_MS && r.rssKiB < MAX_RSS_KIB, `${r.ms} ms, ${r.rssKiB} KiB`);
  assert.equal(await verifyStore(r.root), []);
});

test('[network] in tsbuild.toml: a bad duration is a usage error naming file and line', async () => {
  const bad = join(state.work, 'bad.toml');
  await writeFile(bad, '[network]\nidle-timeout = "soon"\n');
  const root = join(state.work, 'bad-root');
  await mkdir(root, { recursive: true });
  const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [CLI, '--config', bad, '--root', root, 'images'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (b) => (stderr += b));
    child.on('close', (code) => resolve({ code, stderr }));
  });
  assert.is(r.code, 2);
  assert.match(r.stderr, /bad\.toml:2: network\.idle-timeout: expected a positive duration/);
});

test.run();

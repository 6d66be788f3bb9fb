import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DockerConfigCredentials, normalizeRegistryKey } from '../../../src/remote/credentials.js';
import { parseRetryAfter, Transport } from '../../../src/remote/transport.js';
import { parseWwwAuthenticate } from '../../../src/remote/www-authenticate.js';
import { errorForStatus } from '../../../src/remote/registry-error.js';
import { selectPlatform } from '../../../src/remote/platform-select.js';
import { parsePlatform } from '../../../src/oci/platform.js';
import type { Digest } from '../../../src/oci/digest.js';

const wa = suite('parseWwwAuthenticate');
const cases: [string, { scheme: string; params: Record<string, string> }[]][] = [
  ['Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"', [{ scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull' } }]],
  ['Basic realm="Registry Realm"', [{ scheme: 'basic', params: { realm: 'Registry Realm' } }]],
  ['Bearer realm="r",scope="repository:a:pull,push",error="insufficient_scope"', [{ scheme: 'bearer', params: { realm: 'r', scope: 'repository:a:pull,push', error: 'insufficient_scope' } }]],
  ['Basic realm="a", Bearer realm="b", service=svc', [{ scheme: 'basic', params: { realm: 'a' } }, { scheme: 'bearer', params: { realm: 'b', service: 'svc' } }]],
  ['Bearer realm="with \\"quote\\""', [{ scheme: 'bearer', params: { realm: 'with "quote"' } }]],
];
for (const [header, want] of cases) wa(header, () => assert.equal(parseWwwAuthenticate(header), want));
wa.run();

const misc = suite('retry-after, registry keys, errors, platforms');
misc('parseRetryAfter: seconds and HTTP dates', () => {
  assert.is(parseRetryAfter('3'), 3000);
  assert.is(parseRetryAfter(new Date(10_000).toUTCString(), 4_000), 6000);
  assert.is(parseRetryAfter(undefined), undefined);
  assert.is(parseRetryAfter('soon'), undefined);
});
misc('normalizeRegistryKey', () => {
  assert.is(normalizeRegistryKey('https://index.docker.io/v1/'), 'docker.io');
  assert.is(normalizeRegistryKey('http://127.0.0.1:5000'), '127.0.0.1:5000');
  assert.is(normalizeRegistryKey('ghcr.io'), 'ghcr.io');
});
misc('errorForStatus names registry and repository; codes by status', () => {
  const e = errorForStatus(403, '{"errors":[{"code":"DENIED","message":"no"}]}', { registry: 'r:1', repository: 'a/b', what: 'pull manifest a/b:1' });
  assert.is(e.code, 'REGISTRY_DENIED');
  assert.is(e.message, 'pull manifest a/b:1: access denied at registry r:1 repository a/b (HTTP 403): DENIED (no)');
  assert.is(errorForStatus(404, '', { registry: 'r', what: 'x' }).code, 'IMAGE_NOT_FOUND');
  assert.is(errorForStatus(503, '', { registry: 'r', what: 'x' }).temporary, true);
  assert.is(errorForStatus(400, '', { registry: 'r', what: 'x' }).temporary, false);
});
misc('selectPlatform prefers the exact variant and lists what exists', () => {
  const d = (n: number) => `sha256:${String(n).repeat(64)}` as Digest;
  const entries = [
    { mediaType: 'm', digest: d(1), size: 1, platform: { os: 'linux', architecture: 'arm', variant: 'v6' } },
    { mediaType: 'm', digest: d(2), size: 1, platform: { os: 'linux', architecture: 'arm', variant: 'v7' } },
  ];
  assert.is(selectPlatform(entries, parsePlatform('linux/arm/v7'), 'x').digest, d(2));
  // A bare linux/arm means arm/v7, as containerd's platforms.Normalize (and BuildKit) read it.
  assert.is(selectPlatform(entries, parsePlatform('linux/arm'), 'x').digest, d(2));
  assert.is(selectPlatform(entries, parsePlatform('linux/arm/v6'), 'x').digest, d(1));
  assert.throws(() => selectPlatform(entries, parsePlatform('linux/amd64'), 'idx'), /idx has no image for platform linux\/amd64 \(it has: linux\/arm\/v6, linux\/arm\/v7\)/);
  assert.throws(() => parsePlatform('linux'), /os\/arch/);
});
misc.run();

const tr = suite('Transport retries');
tr('429 and 503 are retried, honouring Retry-After; the third answer is returned', async () => {
  let n = 0;
  const times: number[] = [];
  const srv = createServer((_req, res) => {
    times.push(Date.now());
    n++;
    if (n === 1) res.writeHead(429, { 'retry-after': '1' }).end();
    else if (n === 2) res.writeHead(503).end();
    else res.writeHead(200).end('ok');
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const t = new Transport({ retry: { attempts: 3, baseDelayMs: 10, maxDelayMs: 5000 } });
  try {
    const res = await t.send({ method: 'GET', url: `http://127.0.0.1:${(srv.address() as { port: number }).port}/` }, new AbortController().signal, { registry: 'test' });
    assert.is(res.status, 200);
    assert.is(await res.body.text(), 'ok');
    assert.is(n, 3);
    assert.ok(times[1]! - times[0]! >= 950, `waited ${times[1]! - times[0]!} ms after Retry-After: 1`);
  } finally {
    await t.close();
    srv.closeAllConnections();
    await new Promise<void>((r) => srv.close(() => r()));
  }
});
tr('a refused connection fails with a temporary RegistryError after the attempts', async () => {
  const t = new Transport({ retry: { attempts: 2, baseDelayMs: 5, maxDelayMs: 10 } });
  try {
    await t.send({ method: 'GET', url: 'http://127.0.0.1:1/v2/' }, new AbortController().signal, { registry: '127.0.0.1:1' });
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /connection failed/);
    assert.is((e as { temporary: boolean }).temporary, true);
  } finally {
    await t.close();
  }
});
tr.run();

const cred = suite('DockerConfigCredentials');
let dir = '';
cred.before.each(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tsbuild-creds-'));
});
cred.after.each(async () => {
  await rm(dir, { recursive: true, force: true });
});
cred('auths: reads base64 user:password under URL or host keys; store/erase keep other keys', async () => {
  const path = join(dir, 'config.json');
  await writeFile(path, JSON.stringify({ auths: { 'https://index.docker.io/v1/': { auth: Buffer.from('hub:pw').toString('base64') } }, psFormat: 'x' }));
  const c = new DockerConfigCredentials(path);
  assert.equal(await c.get('docker.io'), { username: 'hub', password: 'pw' });
  assert.is(await c.get('ghcr.io'), undefined);
  await c.store('127.0.0.1:5000', { username: 'u', password: 'p:with:colons' });
  assert.equal(await c.get('127.0.0.1:5000'), { username: 'u', password: 'p:with:colons' });
  const saved = JSON.parse(await readFile(path, 'utf8')) as { psFormat: string; auths: Record<string, unknown> };
  assert.is(saved.psFormat, 'x');
  assert.ok(await c.erase('127.0.0.1:5000'));
  assert.not.ok(await c.erase('127.0.0.1:5000'));
  assert.equal(await c.get('docker.io'), { username: 'hub', password: 'pw' });
});
cred('credHelpers: docker-credential-<name> get/store/erase over stdin/stdout', async () => {
  // A real helper executable speaking the protocol, keeping its secrets in a file.
  const bin = join(dir, 'bin');
  const db = join(dir, 'db.json');
  await import('node:fs/promises').then((fs) => fs.mkdir(bin));
  const helper = join(bin, 'docker-credential-tstest');
  await writeFile(
    helper,
    `#!/usr/bin/env node
const fs = require('fs'); const db = ${JSON.stringify(db)};
const load = () => { try { return JSON.parse(fs.readFileSync(db, 'utf8')); } catch { return {}; } };
let input = ''; process.stdin.on('data', (d) => (input += d)); process.stdin.on('end', () => {
  const s = load(); const action = process.argv[2];
  if (action === 'get') { const e = s[input.trim()]; if (!e) { process.stdout.write('credentials not found in native keychain'); process.exit(1); } process.stdout.write(JSON.stringify({ ServerURL: input.trim(), Username: e.u, Secret: e.s })); }
  else if (action === 'store') { const j = JSON.parse(input); s[j.ServerURL] = { u: j.Username, s: j.Secret }; fs.writeFileSync(db, JSON.stringify(s)); }
  else if (action === 'erase') { delete s[input.trim()]; fs.writeFileSync(db, JSON.stringify(s)); }
});
`,
  );
  await chmod(helper, 0o755);
  const path = join(dir, 'config.json');
  await writeFile(path, JSON.stringify({ credHelpers: { 'reg.example:5000': 'tstest' } }));
  const oldPath = process.env.PATH;
  process.env.PATH = `${bin}:${oldPath}`;
  try {
    const c = new DockerConfigCredentials(path);
    assert.is(await c.get('reg.example:5000'), undefined);
    await c.store('reg.example:5000', { username: 'x', password: 'y' });
    assert.equal(await c.get('reg.example:5000'), { username: 'x', password: 'y' });
    assert.equal(JSON.parse(await readFile(db, 'utf8')), { 'reg.example:5000': { u: 'x', s: 'y' } });
    await c.erase('reg.example:5000');
    assert.is(await c.get('reg.example:5000'), undefined);
    assert.equal(JSON.parse(await readFile(path, 'utf8')), { credHelpers: { 'reg.example:5000': 'tstest' } }, 'config.json itself untouched');
  } finally {
    process.env.PATH = oldPath;
  }
});
cred.run();

/**
 * ADD <https URL> against a node:https server of the test's own on 127.0.0.1 whose certificate
 * comes from a private CA made with openssl: with NODE_EXTRA_CA_CERTS naming the CA the download
 * verifies (and revalidates with a 304 over TLS too); without it the build fails with a user
 * error (exit 1) naming the Dockerfile line, the URL and the certificate problem.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { useBuildRoot } from '../helpers/build-root.js';
import { tsbuild, tsbuildOk } from '../helpers/cli.js';
import { startHttpFileServer, type HttpFileServer } from '../helpers/http-file-server.js';
import { makeTestCa, type TestCa } from '../helpers/test-ca.js';

const test = suite('integration: ADD <https URL> verified against a private CA');
const env = useBuildRoot(test, 'add-url-https');
let server: HttpFileServer;
let ca: TestCa;
let caDir = '';

test.before(async () => {
  caDir = await mkdtemp(join(env.work, 'ca-'));
  ca = await makeTestCa(caDir);
  server = await startHttpFileServer({ tls: { certFile: ca.certFile, keyFile: ca.keyFile } });
  server.set('/secure/file.txt', { body: 'over tls\n', etag: '"tls1"' });
});
test.after(async () => {
  await server?.close();
  if (caDir) await rm(caDir, { recursive: true, force: true });
});

/** No extra CA unless the test gives one (an inherited NODE_EXTRA_CA_CERTS must not decide the outcome). */
function withCa(file: string | undefined): NodeJS.ProcessEnv {
  return { NODE_EXTRA_CA_CERTS: file };
}

test('with the CA in NODE_EXTRA_CA_CERTS the download verifies; the rebuild revalidates with a 304', async () => {
  const url = `${server.base}/secure/file.txt`;
  const ctx = await env.context(['FROM scratch', `ADD ${url} /f.txt`].join('\n'));
  const out = join(env.work, 'out-tls');
  await tsbuildOk(['--root', env.root, 'build', '--output', `type=local,dest=${out}`, ctx], { env: withCa(ca.caFile) });
  assert.is(readFileSync(join(out, 'f.txt'), 'utf8'), 'over tls\n');
  await tsbuildOk(['--root', env.root, 'build', ctx], { env: withCa(ca.caFile) });
  assert.equal(
    server.requestsFor('/secure/file.txt').map((r) => [r.status, r.ifNoneMatch]),
    [
      [200, undefined],
      [304, '"tls1"'],
    ],
  );
});

test('without the CA: exit 1, Dockerfile:N, the URL and the certificate problem; nothing downloaded', async () => {
  const url = `${server.base}/secure/file.txt`;
  const before = server.requests.length;
  const ctx = await env.context(['FROM scratch', '', `ADD ${url} /f.txt`].join('\n'));
  const r = await tsbuild(['--root', env.root, 'build', ctx], { env: withCa(undefined) });
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /error: \S*Dockerfile:3: /);
  assert.match(r.stderr, `>>>   3 | ADD ${url}`);
  assert.match(r.stderr, `failed to download ${url}: TLS certificate of the server is not trusted`);
  assert.match(r.stderr, /UNABLE_TO_VERIFY_LEAF_SIGNATURE: unable to verify the first certificate/);
  assert.match(r.stderr, 'NODE_EXTRA_CA_CERTS', 'the hint says how to trust a private CA');
  assert.not.match(r.stderr, /internal error|\n\s+at /, 'a user error, not a crash with a stack');
  assert.is(server.requests.length, before, 'the TLS handshake failed before any request');
});

test('a CA that did not sign the server certificate is refused too', async () => {
  const otherDir = await mkdtemp(join(env.work, 'other-ca-'));
  try {
    const other = await makeTestCa(otherDir);
    const url = `${server.base}/secure/file.txt`;
    const ctx = await env.context(['FROM scratch', `ADD ${url} /f.txt`].join('\n'));
    const r = await tsbuild(['--root', env.root, 'build', '--no-cache', ctx], { env: withCa(other.caFile) });
    assert.is(r.code, 1, r.stderr);
    assert.match(r.stderr, 'Dockerfile:2');
    assert.match(r.stderr, 'TLS certificate of the server is not trusted');
  } finally {
    await rm(otherDir, { recursive: true, force: true });
  }
});

test.run();

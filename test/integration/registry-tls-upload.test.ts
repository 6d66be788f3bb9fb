import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { sha256 } from '../../src/oci/digest.js';
import { useBuildRoot } from '../helpers/build-root.js';
import { tsbuild, tsbuildOk } from '../helpers/cli.js';
import { startNoChunksProxy, startRegistry, type NoChunksProxy, type TestRegistry } from '../helpers/registry.js';
import { tool } from '../helpers/run-tool.js';

const pexec = promisify(execFile);

/**
 * Two registry behaviours docker-registry does not show by itself: a registry that refuses
 * chunked uploads (an HTTP proxy of this test's own answers PATCH with 405, so push must fall
 * back to one monolithic PUT), and a registry on https with a self-signed certificate, which
 * tsbuild must refuse with a TLS error naming it unless tsbuild.toml lists it as insecure.
 */
const test = suite('integration/registry-tls-upload: monolithic PUT fallback, self-signed TLS only when insecure');
const br = useBuildRoot(test, 'regtls');
let plain: TestRegistry;
let proxy: NoChunksProxy;
let tls: TestRegistry;
let certDir: string;
let insecureConfig: string;

test.before(async () => {
  plain = await startRegistry();
  proxy = await startNoChunksProxy(plain.host);
  certDir = await mkdtemp(join(br.work, 'cert-'));
  const certFile = join(certDir, 'cert.pem');
  const keyFile = join(certDir, 'key.pem');
  await pexec('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1']);
  tls = await startRegistry({ kind: 'none' }, { tls: { certFile, keyFile } });
  insecureConfig = join(br.work, 'tsbuild.toml');
  await writeFile(insecureConfig, `[registry."${tls.host}"]\ninsecure = true\n`);
});
test.after(async () => {
  await proxy?.stop();
  await plain?.stop();
  await tls?.stop();
  if (certDir) await rm(certDir, { recursive: true, force: true });
});

test('a registry that refuses PATCH gets each blob in one PUT; skopeo sees the pushed digests', async () => {
  const meta = join(br.work, 'nochunks-meta.json');
  await tsbuildOk(['--root', br.root, 'push', '--metadata-file', meta, 'busybox', `${proxy.host}/mono/busybox:1`]);
  assert.ok(proxy.stats.refusedPatches >= 1, JSON.stringify(proxy.stats));
  // Every blob (layer + config) that was refused a PATCH arrived as a monolithic PUT.
  assert.is(proxy.stats.monolithicPuts, proxy.stats.refusedPatches, JSON.stringify(proxy.stats));
  const m = JSON.parse(await readFile(meta, 'utf8')) as Record<string, unknown>;
  // skopeo reads straight from the registry, not through the proxy.
  const ref = `docker://${plain.host}/mono/busybox:1`;
  const manifest = await tool('skopeo', ['inspect', '--raw', '--tls-verify=false', ref]);
  const cfg = await tool('skopeo', ['inspect', '--raw', '--config', '--tls-verify=false', ref]);
  assert.is(m['containerimage.digest'], sha256(Buffer.from(manifest)));
  assert.is(m['containerimage.config.digest'], sha256(Buffer.from(cfg)));
  // skopeo copy verifies every blob's digest on the way.
  const out = await mkdtemp(join(br.work, 'skopeo-'));
  try {
    await tool('skopeo', ['copy', '--src-tls-verify=false', ref, `oci:${out}:x`]);
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});

test('a self-signed https registry not listed insecure: push and pull exit 1 with a TLS error naming it', async () => {
  const push = await tsbuild(['--root', br.root, 'push', 'busybox', `${tls.host}/tls/busybox:1`]);
  assert.is(push.code, 1, push.stderr);
  assert.match(push.stderr, `TLS certificate of registry ${tls.host} is not trusted`);
  assert.match(push.stderr, /SELF_SIGNED|insecure = true/);
  const fresh = await mkdtemp(join(br.work, 'fresh-'));
  try {
    const pull = await tsbuild(['--root', fresh, 'pull', `${tls.host}/tls/busybox:1`]);
    assert.is(pull.code, 1, pull.stderr);
    assert.match(pull.stderr, `TLS certificate of registry ${tls.host} is not trusted`);
  } finally {
    await rm(fresh, { recursive: true, force: true });
  }
});

test('listed insecure in tsbuild.toml: push and pull over TLS without verification; skopeo agrees', async () => {
  const meta = join(br.work, 'tls-meta.json');
  const name = `${tls.host}/tls/busybox:1`;
  await tsbuildOk(['--config', insecureConfig, '--root', br.root, 'push', '--metadata-file', meta, 'busybox', name]);
  const m = JSON.parse(await readFile(meta, 'utf8')) as Record<string, unknown>;
  // skopeo speaks https to it too (it never falls back to http for --tls-verify=false on a TLS port).
  const manifest = await tool('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${name}`]);
  assert.is(m['containerimage.digest'], sha256(Buffer.from(manifest)));
  const fresh = await mkdtemp(join(br.work, 'fresh-'));
  try {
    const r = await tsbuildOk(['--config', insecureConfig, '--root', fresh, 'pull', '-q', name]);
    assert.is(r.stdout.trim(), sha256(Buffer.from(manifest)));
  } finally {
    await rm(fresh, { recursive: true, force: true });
  }
});

test.run();

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256 } from '../../src/oci/digest.js';
import { useBuildRoot } from '../helpers/build-root.js';
import { tsbuild, tsbuildOk } from '../helpers/cli.js';
import { startRegistry, startTokenServer, type TestRegistry, type TokenServer } from '../helpers/registry.js';
import { tool } from '../helpers/run-tool.js';

/**
 * `tsbuild login` against a registry whose token server hands out refresh tokens (docker-registry
 * with token auth, and a token server of this test's own): like docker, the refresh token is
 * stored in config.json as `identitytoken` instead of the password, and later verbs obtain their
 * access tokens with the refresh-token grant.
 */
const test = suite('integration/registry-login-token: identity-token login');
const br = useBuildRoot(test, 'regtoken');
let tokens: TokenServer;
let reg: TestRegistry;

test.before(async () => {
  tokens = await startTokenServer('dave', 'pw-456', { refreshTokens: true });
  reg = await startRegistry({ kind: 'token', realm: tokens.realm, service: tokens.service, issuer: tokens.issuer, certFile: tokens.certFile });
});
test.after(async () => {
  await reg?.stop();
  await tokens?.stop();
});

test('login stores the identity token, not the password; push then uses the refresh-token grant', async () => {
  const dockerConfig = await mkdtemp(join(br.work, 'docker-'));
  const env = { DOCKER_CONFIG: dockerConfig };
  const bad = await tsbuild(['login', reg.host, '-u', 'dave', '-p', 'wrong'], { env });
  assert.is(bad.code, 1, bad.stderr);
  assert.match(bad.stderr, /refused the credentials/);

  const ok = await tsbuildOk(['login', reg.host, '-u', 'dave', '-p', 'pw-456'], { env });
  assert.match(ok.stdout, `Login Succeeded (${reg.host})`);
  const text = await readFile(join(dockerConfig, 'config.json'), 'utf8');
  assert.not.match(text, 'pw-456');
  const saved = JSON.parse(text) as { auths: Record<string, { auth?: string; identitytoken?: string }> };
  const entry = saved.auths[reg.host] ?? saved.auths[`https://${reg.host}`];
  assert.ok(entry, text);
  assert.match(entry.identitytoken ?? '', /^refresh-/);
  assert.is(Buffer.from(entry.auth ?? '', 'base64').toString(), 'dave:');

  const passwordGrants = tokens.stats.passwordGrants;
  const refreshGrants = tokens.stats.refreshGrants;
  const meta = join(br.work, 'token-meta.json');
  const name = `${reg.host}/team/busybox:1`;
  await tsbuildOk(['--root', br.root, 'push', '--metadata-file', meta, 'busybox', name], { env });
  assert.is(tokens.stats.passwordGrants, passwordGrants, 'the password is never sent again');
  assert.ok(tokens.stats.refreshGrants > refreshGrants, JSON.stringify(tokens.stats));
  const m = JSON.parse(await readFile(meta, 'utf8')) as Record<string, unknown>;
  const manifest = await tool('skopeo', ['inspect', '--raw', '--tls-verify=false', '--creds', 'dave:pw-456', `docker://${name}`]);
  assert.is(m['containerimage.digest'], sha256(Buffer.from(manifest)));
});

test.run();

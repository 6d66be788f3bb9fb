import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { withBuildUser } from '../helpers/build-user.js';
import { CLI, collect, tsbuild } from '../helpers/cli.js';
import { startHttpFileServer } from '../helpers/http-file-server.js';
import { makeTestCa } from '../helpers/test-ca.js';

/**
 * The `tsbuild` command defers NODE_EXTRA_CA_CERTS (src/remote/extra-ca-certs.ts): node does not
 * parse the certificates at start-up, tsbuild's TLS connections trust them (add-url-https.test.ts
 * downloads through a private CA that way), and programs tsbuild starts get the variable back.
 */
const test = suite('integration/extra-ca-certs');
let dir: string;
test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tsbuild-extra-ca-'));
});
test.after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('run as a command, node does not read NODE_EXTRA_CA_CERTS at start-up (node run on the file does)', async () => {
  // Node warns at start when it cannot load the file: the warning shows who read it.
  const env = { NODE_EXTRA_CA_CERTS: join(dir, 'missing.pem') };
  const cmd = await tsbuild(['--version'], { env });
  assert.is(cmd.code, 0, cmd.stderr);
  assert.is(cmd.stderr, '', 'no start-up parse of the certificates');
  const direct = await collect(process.execPath, [CLI, '--version'], { env });
  assert.match(direct.stderr, /Ignoring extra certs from/, 'node itself reads the variable at start');
  // The help, which loads the whole CLI, neither.
  const help = await tsbuild(['--help'], { env });
  assert.is(help.code, 0);
  assert.not.match(help.stderr, /certs|certificates/);
});

test('a credential helper tsbuild runs gets NODE_EXTRA_CA_CERTS as the user set it', async () => {
  const bin = join(dir, 'bin');
  await mkdir(bin, { recursive: true });
  const seen = join(dir, 'seen');
  const helper = join(bin, 'docker-credential-envcheck');
  await writeFile(helper, `#!/bin/sh\nprintf '%s|%s' "\${NODE_EXTRA_CA_CERTS-unset}" "\${TSBUILD_NODE_EXTRA_CA_CERTS-unset}" > '${seen}'\ncat > /dev/null\n`);
  await chmod(helper, 0o755);
  const config = join(dir, 'docker');
  await mkdir(config, { recursive: true });
  await writeFile(join(config, 'config.json'), JSON.stringify({ credHelpers: { 'reg.example:5000': 'envcheck' } }));
  const bundle = join(dir, 'ca.pem');
  await writeFile(bundle, '');
  const r = await tsbuild(['logout', 'reg.example:5000'], { env: { NODE_EXTRA_CA_CERTS: bundle, DOCKER_CONFIG: config, PATH: `${bin}:${process.env.PATH}` } });
  assert.is(r.code, 0, r.stderr);
  assert.is(await readFile(seen, 'utf8'), `${bundle}|unset`);
});

test('rootless and without CAP_SYS_ADMIN (tsbuild runs itself again in a user namespace), an ADD over TLS trusts the deferred certificates', async () => {
  // Everything the build user reads is world-readable: the CA, the context.
  const shared = join(dir, 'shared');
  await mkdir(join(shared, 'ctx'), { recursive: true });
  await chmod(dir, 0o755);
  await chmod(shared, 0o755);
  const ca = await makeTestCa(shared);
  await chmod(ca.caFile, 0o644);
  const server = await startHttpFileServer({ tls: { certFile: ca.certFile, keyFile: ca.keyFile } });
  try {
    server.set('/f.txt', { body: 'over tls\n' });
    await writeFile(join(shared, 'ctx/Dockerfile'), `FROM scratch\nADD ${server.base}/f.txt /f.txt\n`);
    await chmod(join(shared, 'ctx'), 0o755);
    await chmod(join(shared, 'ctx/Dockerfile'), 0o644);
    const env = { NODE_EXTRA_CA_CERTS: ca.caFile };
    await withBuildUser({ subordinateIds: true }, async (user) => {
      const out = join(user.home, 'out');
      const r = await user.run(CLI, ['--root', join(user.home, 'root'), 'build', '--output', `type=local,dest=${out}`, join(shared, 'ctx')], { env });
      assert.is(r.code, 0, r.stderr);
      assert.is(await readFile(join(out, 'f.txt'), 'utf8'), 'over tls\n', 'rootless');
    });
    const out = join(dir, 'out-nocap');
    const r = await collect('capsh', ['--drop=cap_sys_admin', '--', '-c', 'exec "$@"', 'sh', CLI, '--root', join(dir, 'root-nocap'), 'build', '--output', `type=local,dest=${out}`, join(shared, 'ctx')], { env });
    assert.is(r.code, 0, r.stderr);
    assert.is(await readFile(join(out, 'f.txt'), 'utf8'), 'over tls\n', 'without CAP_SYS_ADMIN');
    assert.is(server.requestsFor('/f.txt').length, 2, 'each build downloaded it over TLS');
  } finally {
    await server.close();
  }
});

test.run();

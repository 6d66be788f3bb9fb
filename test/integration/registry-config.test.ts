import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { sha256 } from '../../src/oci/digest.js';
import { useBuildRoot } from '../helpers/build-root.js';
import { tsbuild, tsbuildOk } from '../helpers/cli.js';
import { freePort, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { tool } from '../helpers/run-tool.js';

/**
 * tsbuild.toml's registry settings reach pull, push and login. A plain-HTTP registry is only
 * trusted by default on localhost/127.0.0.1, so each docker-registry here is reached through a
 * TCP forwarder of this test's own on 127.0.0.2 (still loopback, but a name that is not insecure
 * by default): without the config the verbs refuse it, with `insecure = true` they work.
 */
const test = suite('integration/registry-config: tsbuild.toml insecure registries for pull/push/login');
const br = useBuildRoot(test, 'regconf');
let reg: TestRegistry;
let basic: TestRegistry;
const forwarders: { server: Server; sockets: Set<Socket> }[] = [];

/** Listens on 127.0.0.2:PORT and forwards every connection to `target` (host:port on 127.0.0.1). */
async function forward(target: string): Promise<string> {
  const [host, port] = target.split(':') as [string, string];
  const sockets = new Set<Socket>();
  const server = createServer((down) => {
    const up = connect(Number(port), host);
    for (const s of [down, up]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => (s === down ? up : down).destroy());
    }
    down.pipe(up).pipe(down);
  });
  const p = await freePort();
  await new Promise<void>((res) => server.listen(p, '127.0.0.2', res));
  forwarders.push({ server, sockets });
  return `127.0.0.2:${p}`;
}

let open: string;
let auth: string;
let config: string;

test.before(async () => {
  reg = await startRegistry();
  basic = await startRegistry({ kind: 'htpasswd', user: 'carol', password: 'pw-123' });
  open = await forward(reg.host);
  auth = await forward(basic.host);
  config = join(br.work, 'tsbuild.toml');
  await writeFile(config, `[registry."${open}"]\ninsecure = true\n\n[registry."${auth}"]\ninsecure = true\n`);
});
test.after(async () => {
  for (const f of forwarders) {
    for (const s of f.sockets) s.destroy();
    await new Promise<void>((res) => f.server.close(() => res()));
  }
  await reg?.stop();
  await basic?.stop();
});

test('without the config, a plain-HTTP registry that is not localhost is refused with a hint', async () => {
  const r = await tsbuild(['--root', br.root, 'push', 'busybox', `${open}/conf/busybox:1`]);
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /insecure in tsbuild.toml/);
});

test('push with insecure from tsbuild.toml; --metadata-file has the manifest and config digests skopeo sees', async () => {
  const meta = join(br.work, 'push-meta.json');
  const name = `${open}/conf/busybox:1`;
  await tsbuildOk(['--config', config, '--root', br.root, 'push', '--metadata-file', meta, 'busybox', name]);
  const m = JSON.parse(await readFile(meta, 'utf8')) as Record<string, unknown>;
  // skopeo reaches the same registry on 127.0.0.1 (its own default insecure host).
  const viaLoopback = `${reg.host}/conf/busybox:1`;
  const manifest = await tool('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${viaLoopback}`]);
  const cfg = await tool('skopeo', ['inspect', '--raw', '--config', '--tls-verify=false', `docker://${viaLoopback}`]);
  assert.is(m['containerimage.digest'], sha256(Buffer.from(manifest)));
  assert.is(m['containerimage.config.digest'], sha256(Buffer.from(cfg)));
  assert.is(m['image.name'], name);
});

test('pull and FROM on a fresh root through the config-named insecure registry', async () => {
  const fresh = await mkdtemp(join(br.work, 'fresh-'));
  try {
    const r = await tsbuildOk(['--config', config, '--root', fresh, 'pull', `${open}/conf/busybox:1`]);
    assert.match(r.stdout, /pulled sha256:/);
    const ctx = await br.context(`FROM ${open}/conf/busybox:1\nRUN echo via-config > /v\n`);
    await tsbuildOk(['--config', config, '--root', fresh, 'build', '--pull', ctx]);
  } finally {
    await rm(fresh, { recursive: true, force: true });
  }
});

test('pull through a mirror named in tsbuild.toml: the registry itself (unreachable) is never needed', async () => {
  const mirrored = join(br.work, 'mirror.toml');
  // 127.0.0.3:1 has no listener: the pull can only succeed from the mirror.
  await writeFile(mirrored, `[registry."127.0.0.3:1"]\nmirrors = ["${reg.host}"]\n`);
  const fresh = await mkdtemp(join(br.work, 'fresh-'));
  try {
    const r = await tsbuildOk(['--config', mirrored, '--root', fresh, 'pull', '-q', '127.0.0.3:1/conf/busybox:1']);
    const viaLoopback = await tool('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/conf/busybox:1`]);
    assert.is(r.stdout.trim(), sha256(Buffer.from(viaLoopback)));
    const without = await tsbuild(['--root', fresh, 'pull', '127.0.0.3:1/conf/busybox:2']);
    assert.is(without.code, 1, without.stderr);
  } finally {
    await rm(fresh, { recursive: true, force: true });
  }
});

test('login to a config-named insecure registry with basic auth: wrong password exit 1, right one saved', async () => {
  const dockerConfig = await mkdtemp(join(br.work, 'docker-'));
  const env = { DOCKER_CONFIG: dockerConfig };
  const bad = await tsbuild(['--config', config, 'login', auth, '-u', 'carol', '-p', 'nope'], { env });
  assert.is(bad.code, 1, bad.stderr);
  const refused = await tsbuild(['login', auth, '-u', 'carol', '-p', 'pw-123'], { env });
  assert.is(refused.code, 1, 'not insecure without the config');
  const ok = await tsbuildOk(['--config', config, 'login', auth, '-u', 'carol', '-p', 'pw-123'], { env });
  assert.match(ok.stdout, `Login Succeeded (${auth})`);
  const saved = JSON.parse(await readFile(join(dockerConfig, 'config.json'), 'utf8')) as { auths: Record<string, unknown> };
  assert.ok(saved.auths[auth], JSON.stringify(saved));
  await tsbuildOk(['--config', config, '--root', br.root, 'push', 'busybox', `${auth}/private/busybox:1`], { env });
});

test.run();

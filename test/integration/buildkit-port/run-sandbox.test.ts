/**
 * BuildKit's frontend/dockerfile/dockerfile_runnetwork_test.go, dockerfile_runsecurity_test.go and
 * dockerfile_resources_test.go, ported: the RUN sandbox's network, capabilities and limits.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { useBuildRoot } from '../../helpers/build-root.js';
import { tsbuild, tsbuildOk } from '../../helpers/cli.js';

const test = suite('buildkit-port: dockerfile_runnetwork/runsecurity/resources_test.go');
const env = useBuildRoot(test, 'bk-run-sandbox');

/** BuildKit's echoserver: every connection gets "foo". */
async function echoServer(): Promise<{ port: number; server: Server }> {
  const server = createServer((c) => c.end('foo\n'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as { port: number }).port, server };
}
const close = (s: Server): Promise<void> => new Promise((r) => s.close(() => r()));
let outs = 0;

test('testRunDefaultNetwork, testRunNoNetwork: the default network has eth0, --network=none has not', async () => {
  await tsbuildOk(['--root', env.root, 'build', await env.context('FROM busybox\nRUN ip link show eth0\n')]);
  await tsbuildOk(['--root', env.root, 'build', await env.context('FROM busybox\nRUN --network=none ! ip link show eth0\nRUN ip link show eth0\n')]);
});

test('testRunHostNetwork: RUN --network=host reaches the host\'s loopback, the default network does not; refused without the entitlement', async () => {
  const { port, server } = await echoServer();
  try {
    const dir = await env.context(`FROM busybox\nRUN --network=host nc 127.0.0.1 ${port} | grep foo\nRUN ! nc 127.0.0.1 ${port} | grep foo\n`);
    await tsbuildOk(['--root', env.root, 'build', '--allow', 'network.host', dir]);
    const r = await tsbuild(['--root', env.root, 'build', '--no-cache', dir]);
    assert.is(r.code, 1);
    assert.match(r.stderr, 'entitlement network.host is not allowed');
    assert.match(r.stderr, /Dockerfile:2/);
  } finally {
    await close(server);
  }
});

test('testRunGlobalNetwork: the build\'s --network host is every RUN\'s, except RUN --network=none', async () => {
  const { port, server } = await echoServer();
  try {
    const dir = await env.context(`FROM busybox\nRUN nc 127.0.0.1 ${port} | grep foo\nRUN --network=none ! nc -z 127.0.0.1 ${port}\n`);
    await tsbuildOk(['--root', env.root, 'build', '--allow', 'network.host', '--network', 'host', dir]);
    // A usage error here (exit code 2: the flag itself asks for what is not allowed), with BuildKit's words.
    const r = await tsbuild(['--root', env.root, 'build', '--no-cache', '--network', 'host', dir]);
    assert.is(r.code, 2);
    assert.match(r.stderr, 'entitlement network.host is not allowed');
  } finally {
    await close(server);
  }
});

const DEFAULT_CAPS = 'RUN [ "$(cat /proc/self/status | grep CapBnd)" == "CapBnd:\t00000000a80425fb" ]';

test('testRunSecurityInsecure: every capability with --security=insecure, the default set without; refused without the entitlement', async () => {
  // BuildKit expects 3fffffffff: every capability of its daemon. This VM withholds CAP_SYS_RESOURCE
  // from everyone, so the expectation is every capability the builder itself has.
  const bnd = /^CapBnd:\s+([0-9a-f]+)$/m.exec(await readFile('/proc/self/status', 'utf8'))![1]!;
  const all = (BigInt(`0x${bnd}`) & 0x3fffffffffn).toString(16);
  const dir = await env.context(
    `FROM busybox\nRUN --security=insecure [ "$(printf '%x' $(( $(cat /proc/self/status | grep CapBnd | cut -f 2 | sed s#^#0x#) & 0x3fffffffff)))" == "${all}" ]\n${DEFAULT_CAPS}\n`,
  );
  await tsbuildOk(['--root', env.root, 'build', '--allow', 'security.insecure', dir]);
  const r = await tsbuild(['--root', env.root, 'build', '--no-cache', dir]);
  assert.is(r.code, 1);
  assert.match(r.stderr, 'entitlement security.insecure is not allowed');
  assert.match(r.stderr, /Dockerfile:2/);
});

test('testRunSecuritySandbox, testRunSecurityDefault: --security=sandbox and no flag (even when insecure is allowed) get the default set', async () => {
  await tsbuildOk(['--root', env.root, 'build', await env.context(`FROM busybox\n${DEFAULT_CAPS.replace('RUN', 'RUN --security=sandbox')}\n`)]);
  await tsbuildOk(['--root', env.root, 'build', '--allow', 'security.insecure', await env.context(`FROM busybox\n${DEFAULT_CAPS}\n`)]);
});

test('testShmSize, testUlimit: --shm-size and --ulimit reach the RUN', async () => {
  const out = join(env.work, `out-${++outs}`);
  const dir = await env.context('FROM busybox AS base\nRUN mount | grep /dev/shm > /shmsize && ulimit -n > /ulimit\nFROM scratch\nCOPY --from=base /shmsize /ulimit /\n');
  await tsbuildOk(['--root', env.root, 'build', '--shm-size', '134217728', '--ulimit', 'nofile=1062:1062', '-o', `type=local,dest=${out}`, dir]);
  assert.match(await readFile(join(out, 'shmsize'), 'utf8'), 'size=131072k');
  assert.is((await readFile(join(out, 'ulimit'), 'utf8')).trim(), '1062');
});

test.run();

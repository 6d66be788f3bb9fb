import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { toRuntimeSpec, DEFAULT_CAPABILITIES, type ExecRequest } from '../../../src/runtime/spec.js';
import { hostsFile, withoutLocalNameservers, writeEtcFiles } from '../../../src/runtime/etc-files.js';

// Compiled to dist/test/unit/runtime: the golden files live in the source tree.
const GOLDEN = fileURLToPath(new URL('../../../../test/golden/runtime/spec/config.json', import.meta.url));

const base: ExecRequest = {
  rootfs: '/var/lib/tsbuild/mounts/abc/merged',
  args: ['/bin/sh', '-c', 'echo hi'],
  env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'FOO=bar'],
  cwd: '/work',
  uid: 0,
  gid: 0,
  additionalGids: [],
  hostname: 'buildkitsandbox',
  network: 'host',
  mounts: [
    { destination: '/etc/hosts', source: '/tmp/b/hosts', type: 'bind', options: ['rbind', 'rw'] },
    { destination: '/etc/resolv.conf', source: '/tmp/b/resolv.conf', type: 'bind', options: ['rbind', 'rw'] },
  ],
};

const spec = suite('toRuntimeSpec');

spec('matches the golden config.json for a fixed request', async () => {
  const actual = JSON.stringify(toRuntimeSpec(base), null, 2) + '\n';
  if (process.env.UPDATE_GOLDEN) await writeFile(GOLDEN, actual);
  assert.fixture(actual, await readFile(GOLDEN, 'utf8'));
});

spec('is pure: same request, same JSON, and the request is not aliased', () => {
  const a = toRuntimeSpec(base);
  a.process!.args!.push('x');
  a.mounts![0]!.options!.push('x');
  assert.equal(toRuntimeSpec(base), toRuntimeSpec(base));
  assert.equal(base.args.length, 3);
});

const cases: { name: string; req: Partial<ExecRequest>; check(s: ReturnType<typeof toRuntimeSpec>): void }[] = [
  {
    name: 'network host shares the host net namespace',
    req: { network: 'host' },
    check: (s) => assert.equal(s.linux!.namespaces!.map((n) => n.type), ['pid', 'ipc', 'uts', 'mount']),
  },
  {
    name: 'network none adds an empty net namespace',
    req: { network: 'none' },
    check: (s) => assert.equal(s.linux!.namespaces!.map((n) => n.type), ['pid', 'ipc', 'uts', 'mount', 'network']),
  },
  {
    name: 'root gets the default caps as bounding, effective and permitted',
    req: { uid: 0 },
    check: (s) => {
      const c = s.process!.capabilities!;
      assert.equal(c.bounding, [...DEFAULT_CAPABILITIES]);
      assert.equal(c.effective, [...DEFAULT_CAPABILITIES]);
      assert.equal(c.permitted, [...DEFAULT_CAPABILITIES]);
      assert.is(c.ambient, undefined);
    },
  },
  {
    name: 'a non-root user gets bounding caps only',
    req: { uid: 1000, gid: 1000, additionalGids: [10] },
    check: (s) => {
      assert.equal(s.process!.user, { uid: 1000, gid: 1000, additionalGids: [1000, 10] });
      assert.equal(s.process!.capabilities, { bounding: [...DEFAULT_CAPABILITIES] });
    },
  },
  {
    name: 'request mounts come after the defaults',
    req: {},
    check: (s) => {
      const dests = s.mounts!.map((m) => m.destination);
      assert.equal(dests, ['/proc', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue', '/sys', '/sys/fs/cgroup', '/etc/hosts', '/etc/resolv.conf']);
    },
  },
];
for (const c of cases) spec(c.name, () => c.check(toRuntimeSpec({ ...base, ...c.req })));

spec('in a user namespace (rootless): /sys bound read-only from the host (recursively) unless the container owns its network namespace; no uid=/gid= mount options', () => {
  const host = toRuntimeSpec({ ...base, network: 'host' }, { inUserNamespace: true });
  const sys = host.mounts!.filter((m) => m.destination.startsWith('/sys'));
  assert.equal(sys, [{ destination: '/sys', type: 'bind', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro', 'rro'] }], 'cgroups come with the rbind, read-only');
  assert.not.ok(host.mounts!.some((m) => (m.options ?? []).some((o) => /^[ug]id=/.test(o))), 'devpts gid=5 may be unmapped');
  const own = toRuntimeSpec({ ...base, network: 'none' }, { inUserNamespace: true });
  assert.equal(own.mounts!.filter((m) => m.destination.startsWith('/sys')).map((m) => m.type), ['sysfs', 'cgroup']);
  // Nothing else changes: the rest of the spec is the same as for root.
  const plain = toRuntimeSpec({ ...base, network: 'host' });
  assert.equal({ ...host, mounts: [] }, { ...plain, mounts: [] });
  assert.ok(plain.mounts!.some((m) => m.type === 'sysfs') && plain.mounts!.some((m) => (m.options ?? []).includes('gid=5')), 'outside a user namespace: unchanged');
});

spec.run();

const etc = suite('etc files');

etc('hosts maps the hostname to loopback', () => {
  assert.match(hostsFile('box'), /^127\.0\.0\.1\tlocalhost box\n::1\tlocalhost ip6-localhost ip6-loopback\n/);
});

etc('withoutLocalNameservers drops only loopback nameservers', () => {
  const input = 'search example.com\nnameserver 127.0.0.53\nnameserver 10.0.0.1\nnameserver ::1\noptions edns0\n';
  assert.is(withoutLocalNameservers(input), 'search example.com\nnameserver 10.0.0.1\noptions edns0\n');
});

etc('writeEtcFiles writes both files and returns bind mounts over /etc', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tsbuild-etc-'));
  try {
    const hostResolv = join(dir, 'host-resolv.conf');
    await writeFile(hostResolv, 'nameserver 127.0.0.53\nnameserver 10.1.1.1\n');
    await mkdir(join(dir, 'none'));
    await mkdir(join(dir, 'host'));
    const none = await writeEtcFiles(join(dir, 'none'), { hostname: 'h1', network: 'none', hostResolvConf: hostResolv });
    assert.equal(none.map((m) => [m.destination, m.source, m.type]), [
      ['/etc/hosts', join(dir, 'none/hosts'), 'bind'],
      ['/etc/resolv.conf', join(dir, 'none/resolv.conf'), 'bind'],
    ]);
    assert.is(await readFile(join(dir, 'none/resolv.conf'), 'utf8'), 'nameserver 10.1.1.1\n');
    assert.is(await readFile(join(dir, 'none/hosts'), 'utf8'), hostsFile('h1'));
    await writeEtcFiles(join(dir, 'host'), { hostname: 'h1', network: 'host', hostResolvConf: hostResolv });
    assert.is(await readFile(join(dir, 'host/resolv.conf'), 'utf8'), 'nameserver 127.0.0.53\nnameserver 10.1.1.1\n');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

etc.run();

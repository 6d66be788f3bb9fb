/**
 * RUN's network (issue 07 §4), as real builds on the local busybox base: by default a private
 * network namespace with slirp4netns, like BuildKit's sandbox — the outside (here: this host's
 * own non-loopback address) answers, the host's loopback services do not; `--network=host` is
 * the network.host entitlement; `--network=none` has only lo; resolv.conf fits the network; and
 * no slirp4netns or namespace holder is left after a build, a failing RUN, Ctrl-C or a kill.
 *
 * Servers listen on 127.0.0.1 and on this machine's first non-loopback IPv4 address only.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { createSocket } from 'node:dgram';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { useBuildRoot } from '../helpers/build-root.js';
import { CLI, collect, start, tsbuild, tsbuildOk } from '../helpers/cli.js';
import { resolvConfFor } from '../../src/runtime/etc-files.js';

const test = suite('integration: RUN network');
const env = useBuildRoot(test, 'run-network');
const PROBE = fileURLToPath(new URL('../helpers/sandbox-net-probe.js', import.meta.url));

/** A TCP server that greets with `greeting` and counts who connected. */
interface Greeter {
  readonly port: number;
  readonly connections: number;
  close(): Promise<void>;
}

async function greeter(host: string, greeting: string): Promise<Greeter> {
  let connections = 0;
  const server: Server = createServer((s) => {
    connections++;
    s.on('error', () => undefined);
    s.end(`${greeting}\n`);
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, host, resolve));
  return {
    port: (server.address() as AddressInfo).port,
    get connections() {
      return connections;
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/**
 * A DNS server on the host's 127.0.0.1:53 (a loopback resolver, like dnsmasq's) that answers
 * every A query with 192.0.2.123 and records the names asked; undefined when port 53 is taken.
 */
async function loopbackResolver(): Promise<{ readonly asked: string[]; close(): Promise<void> } | undefined> {
  const socket = createSocket('udp4');
  const asked: string[] = [];
  socket.on('message', (q, peer) => {
    const labels: string[] = [];
    let i = 12;
    for (; i < q.length && q[i] !== 0; i += q[i]! + 1) labels.push(q.subarray(i + 1, i + 1 + q[i]!).toString());
    const qtype = q.readUInt16BE(i + 1);
    asked.push(labels.join('.'));
    const header = Buffer.from(q.subarray(0, 12));
    header.writeUInt16BE(0x8180, 2); // response, recursion desired + available, no error
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(qtype === 1 ? 1 : 0, 6);
    header.writeUInt32BE(0, 8);
    const answer = qtype === 1 ? Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 123]) : Buffer.alloc(0);
    socket.send(Buffer.concat([header, q.subarray(12, i + 5), answer]), peer.port, peer.address);
  });
  try {
    await new Promise<void>((resolve, reject) => socket.once('error', reject).bind(53, '127.0.0.1', () => resolve()));
  } catch {
    socket.close();
    return undefined;
  }
  return { asked, close: () => new Promise<void>((r) => socket.close(() => r())) };
}

/** This machine's first non-loopback IPv4 address (192.0.2.2 on the CI VM), if it has one. */
function outsideAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  return undefined;
}

const state: { loop?: Greeter; outside?: Greeter; addr?: string } = {};
test.before(async () => {
  state.loop = await greeter('127.0.0.1', 'loopback-secret');
  state.addr = outsideAddress();
  if (state.addr) state.outside = await greeter(state.addr, 'outside-hello');
  // Said loudly: without such an address the "reaches the outside" half cannot be checked here.
  else console.error('[run-network] NOT CHECKED: this machine has no non-loopback IPv4 address, so a default RUN reaching the outside is not tested');
});
test.after(async () => {
  await state.loop?.close();
  await state.outside?.close();
});

async function build(ctx: string, name: string, extra: readonly string[] = []): Promise<{ out: string; stderr: string }> {
  const out = join(env.work, `${name}-out`);
  const r = await tsbuildOk(['--root', env.root, 'build', '--progress', 'plain', ...extra, '--output', `type=local,dest=${out}`, ctx]);
  return { out, stderr: r.stderr };
}

const read = (p: string): string => readFileSync(p, 'utf8').trim();

interface Proc {
  readonly pid: number;
  readonly ppid: number;
  readonly argv: string[];
  readonly netns: string;
}

function processes(): Proc[] {
  const out: Proc[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').filter(Boolean);
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      out.push({ pid: Number(name), ppid, argv, netns: readlinkSync(`/proc/${name}/ns/net`) });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/**
 * What a tsbuild process `owner` (or, without one, any dead tsbuild) left running: slirp4netns
 * processes name the namespace they serve as /proc/<tsbuild pid>/fd/N; a namespace holder is
 * `unshare --net -- cat` or that cat, outside our network namespace. A network namespace with
 * no process, open descriptor or bind mount (tsbuild makes none) no longer exists, so these are
 * all that could hold one.
 */
function leftovers(owner?: number): string[] {
  const ours = readlinkSync('/proc/self/ns/net');
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  const found: string[] = [];
  for (const p of processes()) {
    if (p.argv[0]?.endsWith('slirp4netns')) {
      const m = /^\/proc\/(\d+)\/fd\//.exec(p.argv.find((a) => a.startsWith('/proc/')) ?? '');
      if (m && (owner === undefined ? !alive(Number(m[1])) : Number(m[1]) === owner)) found.push(`slirp4netns ${p.pid}: ${p.argv.join(' ')}`);
    } else if (p.argv.join(' ') === 'unshare --net -- cat' || (p.argv.join(' ') === 'cat' && p.netns !== ours)) {
      found.push(`holder ${p.pid}: ${p.argv.join(' ')}`);
    }
  }
  return found;
}

test('a default RUN reaches the outside through slirp4netns but not the host\'s loopback; --network=host (allowed) does', async () => {
  const loop = state.loop!;
  const lines = [
    'FROM busybox',
    // Every way to the host's loopback: the slirp gateway, our own 127.0.0.1, and the DNS alias on the server's port.
    `RUN ls /sys/class/net > /nets; cat /sys/class/net/eth0/tun_flags > /tun-flags; for a in 10.0.2.2 127.0.0.1 10.0.2.3; do nc -w 2 $a ${loop.port} </dev/null; done > /loop 2>&1; ` +
      (state.addr ? `nc -w 2 ${state.addr} ${state.outside!.port} </dev/null > /outside 2>&1; ` : '') +
      'true',
    `RUN --network=host nc -w 2 127.0.0.1 ${loop.port} </dev/null > /loop-host`,
  ];
  const ctx = await env.context(lines.join('\n'));
  const before = loop.connections;
  const { out } = await build(ctx, 'default', ['--allow', 'network.host']);
  assert.equal(read(join(out, 'nets')).split('\n'), ['eth0', 'lo'], 'a namespace of its own, with slirp\'s eth0');
  // IFF_TAP | IFF_NO_PI | IFF_PERSIST: made by tsbuild, so slirp4netns's exit leaves its removal to the namespace's end.
  assert.is(read(join(out, 'tun-flags')), '0x1802');
  assert.not.match(read(join(out, 'loop')), 'loopback-secret');
  if (state.addr) assert.is(read(join(out, 'outside')), 'outside-hello', 'the host\'s non-loopback address answers through slirp');
  assert.is(read(join(out, 'loop-host')), 'loopback-secret', 'with the host network the same server answers');
  assert.is(loop.connections - before, 1, 'only the --network=host RUN ever connected to the loopback server');
  assert.equal(leftovers(), []);
});

test('--network=host needs the network.host entitlement: the error names the line and --allow network.host; tsbuild.toml can grant it', async () => {
  const ctx = await env.context(['FROM busybox', 'RUN echo fine', 'RUN --network=host ls /sys/class/net > /nets'].join('\n'));
  const refused = await tsbuild(['--root', env.root, 'build', '--progress', 'plain', ctx]);
  assert.is(refused.code, 1, refused.stderr);
  assert.match(refused.stderr, 'Dockerfile:3');
  assert.match(refused.stderr, 'RUN --network=host: entitlement network.host is not allowed');
  assert.match(refused.stderr, '--allow network.host');

  const plain = await env.context(['FROM busybox', 'RUN ls /sys/class/net > /nets'].join('\n'));
  const flag = await tsbuild(['--root', env.root, 'build', '--network', 'host', plain]);
  assert.is(flag.code, 2, flag.stderr);
  assert.match(flag.stderr, '--network host: entitlement network.host is not allowed');
  assert.match(flag.stderr, '--allow network.host');

  const config = join(env.work, 'allow-host.toml');
  await writeFile(config, '[build]\nallow = ["network.host"]\n');
  const { out } = await build(plain, 'host-by-config', ['--config', config, '--network', 'host']);
  assert.ok(read(join(out, 'nets')).split('\n').length > 2, 'the host\'s interfaces');
});

test('--network=none has only lo; the sandbox\'s resolv.conf is the host\'s with loopback nameservers as 10.0.2.3', async () => {
  const ctx = await env.context(['FROM busybox', 'RUN --network=none ls /sys/class/net > /nets', 'RUN cat /etc/resolv.conf > /resolv'].join('\n'));
  const { out } = await build(ctx, 'none-dns');
  assert.is(read(join(out, 'nets')), 'lo');
  assert.is(readFileSync(join(out, 'resolv'), 'utf8'), resolvConfFor('sandbox', readFileSync('/etc/resolv.conf', 'utf8')));
});

test('with a loopback resolver (127.0.0.1) the RUN gets 10.0.2.3, which resolves through it and leads to its port 53 only, never to other loopback services', async () => {
  // A private mount namespace gives this tsbuild its own /etc/resolv.conf; the host's stays untouched.
  const loop = state.loop!;
  const resolver = await loopbackResolver();
  if (!resolver) console.error('[run-network] NOT CHECKED: 127.0.0.1:53 is taken on this machine, so name resolution through 10.0.2.3 is not tested');
  const rc = join(env.work, 'resolv-loopback.conf');
  await writeFile(rc, 'search example.test\nnameserver 127.0.0.1\n');
  const ctx = await env.context(
    ['FROM busybox', `RUN cat /etc/resolv.conf > /resolv; nc -w 2 10.0.2.3 ${loop.port} </dev/null > /alias 2>&1; nslookup tsbuild-probe.test > /lookup 2>&1; true`].join('\n'),
  );
  const out = join(env.work, 'dns-alias-out');
  const before = loop.connections;
  const r = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
    const child = spawn(
      'unshare',
      ['--mount', '--propagation', 'private', 'sh', '-c', 'mount --bind "$0" /etc/resolv.conf && exec "$@"', rc, process.execPath, CLI, '--root', env.root, 'build', '--progress', 'plain', '--output', `type=local,dest=${out}`, ctx],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
  await resolver?.close();
  assert.is(r.code, 0, r.stderr);
  assert.is(read(join(out, 'resolv')), 'search example.test\nnameserver 10.0.2.3');
  assert.not.match(read(join(out, 'alias')), 'loopback-secret');
  assert.is(loop.connections, before, 'the loopback server saw no connection');
  if (resolver) {
    assert.ok(resolver.asked.includes('tsbuild-probe.test'), `the host's resolver was asked: ${JSON.stringify(resolver.asked)}`);
    assert.match(read(join(out, 'lookup')), /Address:\s+192\.0\.2\.123/);
  }
});

test('without slirp4netns a build warns once, naming why, and its RUNs use the host network with the host\'s resolv.conf', async () => {
  // A PATH that has everything /usr/bin and /usr/sbin have except slirp4netns.
  const bin = join(env.work, 'bin-without-slirp');
  await mkdir(bin);
  for (const dir of ['/usr/local/bin', '/usr/bin', '/usr/sbin', '/bin', '/sbin']) {
    for (const name of readdirSync(dir)) if (name !== 'slirp4netns') await symlink(join(dir, name), join(bin, name)).catch(() => undefined);
  }
  const ctx = await env.context(['FROM busybox', 'RUN ls /sys/class/net > /nets', 'RUN cat /etc/resolv.conf > /resolv'].join('\n'));
  const out = join(env.work, 'no-slirp-out');
  const r = await tsbuild(['--root', env.root, 'build', '--progress', 'plain', '--output', `type=local,dest=${out}`, ctx], { env: { PATH: bin } });
  assert.is(r.code, 0, r.stderr);
  const warnings = r.stderr.split('\n').filter((l) => l.startsWith('WARNING: '));
  assert.equal(warnings, ["WARNING: RUN steps use the host's network: no private network can be made here (slirp4netns not found)"]);
  assert.ok(read(join(out, 'nets')).split('\n').length > 2, 'the host\'s interfaces');
  assert.is(readFileSync(join(out, 'resolv'), 'utf8'), readFileSync('/etc/resolv.conf', 'utf8'));
});

test('the RUN network is made while an earlier step of the build runs, and a no-op rebuild makes none', async () => {
  // slirp4netns as a script that logs each start, then runs the real one.
  const bin = join(env.work, 'bin-logging-slirp');
  const log = join(env.work, 'slirp-starts.log');
  await mkdir(bin);
  await writeFile(join(bin, 'slirp4netns'), `#!/bin/sh\necho "start $(date +%s%3N)" >> '${log}'\nexec /usr/bin/slirp4netns "$@"\n`, { mode: 0o755 });
  const PATH = `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`;
  const starts = () => (readFileSync(log, { encoding: 'utf8', flag: 'a+' }).match(/start/g) ?? []).length;
  const ctx = await env.context(['FROM busybox', 'COPY f /f', 'RUN cat /f > /g'].join('\n'), { f: 'one' });
  const build = () => tsbuild(['--root', env.root, 'build', '--progress', 'rawjson', ctx], { env: { PATH } });
  const first = await build();
  assert.is(first.code, 0, first.stderr);
  assert.is(starts(), 1, 'one network for the RUN');
  const noop = await build();
  assert.is(noop.code, 0, noop.stderr);
  assert.is(starts(), 1, 'a fully cached build starts no network');
  await writeFile(join(ctx, 'f'), 'two');
  const third = await build();
  const events = (third.stdout + third.stderr).split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { type: string; name?: string; at: number });
  assert.is(starts(), 2);
  // Made as the COPY started, before the RUN did: the RUN found it ready or nearly.
  const runStart = events.find((e) => e.type === 'vertex.start' && e.name?.includes('RUN cat'));
  const slirpAt = Number(readFileSync(log, 'utf8').trim().split('\n').at(-1)!.split(' ')[1]);
  assert.ok(runStart, 'the RUN ran');
  assert.ok(slirpAt < runStart.at, `slirp4netns started at ${slirpAt}, before the RUN (${runStart.at})`);
});

test('the last RUN\'s network is torn down as its process exits, while its layer is committed; earlier RUNs share one', async () => {
  // slirp4netns as a script that logs its pid, then becomes the real one (exec: the pid tsbuild kills).
  const bin = join(env.work, 'bin-pid-slirp');
  const log = join(env.work, 'slirp-pids.log');
  await mkdir(bin);
  await writeFile(join(bin, 'slirp4netns'), `#!/bin/sh\necho $$ >> '${log}'\nexec /usr/bin/slirp4netns "$@"\n`, { mode: 0o755 });
  // The last RUN writes 64 MiB: its commit (a tar of it, hashed and written) outlasts the teardown.
  const ctx = await env.context(['FROM busybox', 'RUN echo one > /one', 'RUN echo two > /two', 'RUN head -c 67108864 /dev/zero > /big'].join('\n'));
  const child = start(CLI, ['--root', env.root, 'build', '--no-cache', '--progress', 'rawjson', ctx], { env: { PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}` } });
  let goneAt: number | undefined;
  let pid: number | undefined;
  const watch = setInterval(() => {
    pid ??= Number(readFileSync(log, { encoding: 'utf8', flag: 'a+' }).split('\n')[0]) || undefined;
    if (pid !== undefined && goneAt === undefined && !existsSync(`/proc/${pid}`)) goneAt = Date.now();
  }, 2);
  const r = await child.done.finally(() => clearInterval(watch));
  assert.is(r.code, 0, r.stderr);
  assert.is(readFileSync(log, 'utf8').trim().split('\n').length, 1, 'the three RUNs share one network');
  const events = (r.stdout + r.stderr).split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { type: string; name?: string; at: number });
  const lastDone = events.find((e) => e.type === 'vertex.done' && e.name?.includes('RUN head'));
  assert.ok(lastDone && goneAt !== undefined, 'the last RUN ran and slirp4netns is gone');
  assert.ok(goneAt < lastDone.at, `slirp4netns gone at ${goneAt}, before the last RUN's commit ended (${lastDone.at})`);
});

test('after parallel RUNs, the networks no later RUN can use are torn down at once, not when the build ends', async () => {
  const bin = join(env.work, 'bin-pid-slirp-2');
  const log = join(env.work, 'slirp-pids-2.log');
  await mkdir(bin);
  await writeFile(join(bin, 'slirp4netns'), `#!/bin/sh\necho $$ >> '${log}'\nexec /usr/bin/slirp4netns "$@"\n`, { mode: 0o755 });
  // Two stages RUN at once (two networks); the final stage has one RUN on a private network,
  // after a second without one: one network is all it can use.
  const ctx = await env.context(['FROM busybox AS a', 'RUN sleep 0.3 && echo a > /a', 'FROM busybox AS b', 'RUN sleep 0.3 && echo b > /b', 'FROM busybox', 'COPY --from=a /a /a', 'COPY --from=b /b /b', 'RUN --network=none sleep 1', 'RUN cat /a /b > /c'].join('\n'));
  const child = start(CLI, ['--root', env.root, 'build', '--no-cache', '--progress', 'rawjson', ctx], { env: { PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}` } });
  const gone = new Map<number, number>();
  const watch = setInterval(() => {
    for (const pid of readFileSync(log, { encoding: 'utf8', flag: 'a+' }).split('\n').filter(Boolean).map(Number)) if (!gone.has(pid) && !existsSync(`/proc/${pid}`)) gone.set(pid, Date.now());
  }, 2);
  const r = await child.done.finally(() => clearInterval(watch));
  assert.is(r.code, 0, r.stderr);
  const pids = readFileSync(log, 'utf8').split('\n').filter(Boolean).map(Number);
  assert.is(pids.length, 2, 'a network for each of the two RUNs at once');
  const events = (r.stdout + r.stderr).split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { type: string; name?: string; at: number });
  const lastStart = events.find((e) => e.type === 'vertex.start' && e.name?.includes('RUN cat'));
  assert.ok(lastStart);
  const before = pids.filter((p) => (gone.get(p) ?? Infinity) < lastStart.at);
  assert.is(before.length, 1, `one network torn down before the last RUN started (${JSON.stringify([...gone])}, RUN at ${lastStart.at})`);
});

test('isolation chroot (no namespaces at all): RUNs use the host network with the host\'s resolv.conf, and the build says so once', async () => {
  const ctx = await env.context(['FROM busybox', 'RUN cat /etc/resolv.conf > /resolv', 'RUN echo second > /second'].join('\n'));
  const out = join(env.work, 'chroot-out');
  const r = await tsbuild(['--isolation', 'chroot', '--root', env.root, 'build', '--progress', 'plain', '--output', `type=local,dest=${out}`, ctx]);
  assert.is(r.code, 0, r.stderr);
  const warnings = r.stderr.split('\n').filter((l) => l.startsWith('WARNING: '));
  assert.equal(warnings, ["WARNING: RUN steps use the host's network: no private network can be made here (isolation chroot makes no network namespace)"]);
  assert.is(readFileSync(join(out, 'resolv'), 'utf8'), readFileSync('/etc/resolv.conf', 'utf8'));
  assert.is(read(join(out, 'second')), 'second');
});

/** Starts a build whose RUN sleeps; resolves once the RUN is running. */
async function startSleepingBuild(name: string): Promise<{ child: ChildProcess; stderr: () => string; done: Promise<number | null> }> {
  // The output differs from the command text, which the progress prints first.
  const ctx = await env.context(['FROM busybox', `RUN echo "$((6*7))-${name}" && sleep 60`].join('\n'));
  const child = spawn(process.execPath, [CLI, '--root', env.root, 'build', '--progress', 'plain', '--no-cache', ctx], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const done = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  for (let i = 0; i < 300 && !stderr.includes(`42-${name}`); i++) await sleep(50);
  assert.ok(stderr.includes(`42-${name}`), stderr);
  return { child, stderr: () => stderr, done };
}

test('no slirp4netns or namespace holder is left after a failing RUN, a Ctrl-C\'d build or a killed one', async () => {
  const failing = await env.context(['FROM busybox', 'RUN exit 3'].join('\n'));
  const r = await tsbuild(['--root', env.root, 'build', failing]);
  assert.is(r.code, 1, r.stderr);
  assert.equal(leftovers(), []);

  const interrupted = await startSleepingBuild('ctrl-c');
  // The check finds what it looks for: mid-RUN, the build's slirp4netns is there.
  assert.is(leftovers(interrupted.child.pid).length, 1, 'one slirp4netns serves the running RUN');
  interrupted.child.kill('SIGINT');
  assert.is(await interrupted.done, 130, interrupted.stderr());
  assert.equal(leftovers(interrupted.child.pid), []);

  // SIGKILL: no finally runs. slirp4netns sees its exit fd close and goes; the container is
  // removed by the next build's stale cleanup (and the suite's hook checks none is left).
  const killed = await startSleepingBuild('killed');
  killed.child.kill('SIGKILL');
  await killed.done;
  for (let i = 0; i < 40 && leftovers(killed.child.pid).length > 0; i++) await sleep(50);
  assert.equal(leftovers(killed.child.pid), [], 'slirp4netns exits when its build dies');
  await tsbuildOk(['--root', env.root, 'build', await env.context('FROM busybox\nRUN true\n')]);
  assert.equal(leftovers(), []);
});

test('root of its own user namespace (rootless tsbuild) gets the same private network', async () => {
  if (!state.addr) {
    console.error('[run-network] NOT CHECKED: no non-loopback IPv4 address for the user-namespace case');
    return;
  }
  const probe = (prefix: string[]) => collect(prefix[0]!, [...prefix.slice(1), 'unshare', '--user', '--map-root-user', '--mount', process.execPath, PROBE, state.addr!, String(state.outside!.port)]);
  const r = await probe(['env']);
  assert.is(r.code, 0, r.stderr);
  const seen = JSON.parse(r.stdout) as { uid: number; warnings: string[]; links?: string[]; host?: string; gateway?: string };
  assert.is(seen.uid, 0);
  assert.equal(seen.warnings, []);
  assert.equal(seen.links?.sort(), ['eth0', 'lo']);
  assert.is(seen.host?.trim(), 'outside-hello');
  assert.match(seen.gateway ?? '', 'failed', 'the gateway does not lead to the host\'s loopback');

  // An unprivileged user's namespace: on a host whose /dev/net/tun is 0600 (this VM) slirp4netns
  // cannot open it; then the build falls back with one warning naming why, never silently.
  const nobody = await probe(['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups']);
  assert.is(nobody.code, 0, nobody.stderr);
  const n = JSON.parse(nobody.stdout) as { warnings: string[]; host?: string };
  if (n.host !== undefined) assert.is(n.host.trim(), 'outside-hello');
  else {
    assert.is(n.warnings.length, 1);
    assert.match(n.warnings[0]!, /^RUN steps use the host's network: no private network can be made here \(.+\)$/);
  }
  assert.equal(leftovers(), []);
});

test('rootless tsbuild (root without CAP_SYS_ADMIN runs itself in a user namespace): RUN gets the same private network', async () => {
  const loop = state.loop!;
  const ctx = await env.context(
    [
      'FROM busybox',
      `RUN ls /sys/class/net > /nets; cat /sys/class/net/eth0/tun_flags > /tun-flags; nc -w 2 10.0.2.2 ${loop.port} </dev/null > /loop 2>&1; ` + (state.addr ? `nc -w 2 ${state.addr} ${state.outside!.port} </dev/null > /outside 2>&1; ` : '') + 'true',
    ].join('\n'),
  );
  const out = join(env.work, 'rootless-out');
  const before = loop.connections;
  const r = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
    const args = [CLI, '--root', env.root, 'build', '--progress', 'plain', '--no-cache', '--output', `type=local,dest=${out}`, ctx].map((a) => `"${a}"`).join(' ');
    const child = spawn('capsh', ['--drop=cap_sys_admin', '--', '-c', `exec "${process.execPath}" ${args}`], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stderr, 'isolation: rootless');
  assert.not.match(r.stderr, 'WARNING');
  assert.equal(read(join(out, 'nets')).split('\n'), ['eth0', 'lo']);
  assert.is(read(join(out, 'tun-flags')), '0x1802', 'the persistent tap is made in our own user namespace too');
  assert.not.match(read(join(out, 'loop')), 'loopback-secret');
  assert.is(loop.connections, before);
  if (state.addr) assert.is(read(join(out, 'outside')), 'outside-hello');
  assert.equal(leftovers(), []);
});

test('where no network namespace may be made (root without CAP_SYS_ADMIN, outside a user namespace) the provider warns once, naming why, and hands out none', async () => {
  const r = await collect('capsh', ['--drop=cap_sys_admin', '--', '-c', 'exec "$@"', 'sh', process.execPath, PROBE, '127.0.0.1', '1']);
  assert.is(r.code, 0, r.stderr);
  const seen = JSON.parse(r.stdout) as { warnings: string[]; links?: string[] };
  assert.equal(seen.warnings, ["RUN steps use the host's network: no private network can be made here (unshare(CLONE_NEWNET) failed: Operation not permitted)"]);
  assert.is(seen.links, undefined);
});

test.run();

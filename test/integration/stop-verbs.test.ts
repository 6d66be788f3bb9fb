/**
 * Every verb stops when asked (SIGINT/SIGTERM: exit 130, promptly, no stack trace, nothing left
 * behind), endless or special inputs end quickly, and no output lands in a system directory.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { lstat, mkdir, open, readdir, readFile, readlink, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { useBuildRoot } from '../helpers/build-root.js';
import { CLI, tsbuild } from '../helpers/cli.js';
import { diskUsage, prune } from '../../src/orchestrator/gc.js';

const test = suite('integration: every verb stops when asked; no output in system directories');
const env = useBuildRoot(test, 'stop');

/** A TCP server on 127.0.0.1 that accepts connections and never answers: a registry or web server that hangs. */
async function startSilentServer(): Promise<{ host: string; nextConnection(): Promise<void>; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let waiters: (() => void)[] = [];
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    for (const w of waiters) w();
    waiters = [];
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    host: `127.0.0.1:${port}`,
    nextConnection: () => new Promise<void>((r) => waiters.push(r)),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

interface Interrupted {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderr: string;
  readonly ms: number;
}

/**
 * Starts tsbuild, waits until `ready` resolves (the verb is in its long wait; `false`: 1.5 s) or it exits, sends `signal`,
 * and reports how it ended and how long that took. The child is killed in any case.
 */
async function interrupt(args: readonly string[], ready: (pid: number) => Promise<void> | false, signal: NodeJS.Signals, opts: { stdin?: 'pipe' | 'ignore' } = {}): Promise<Interrupted & { pid: number }> {
  const child = spawn(process.execPath, [CLI, '--root', env.root, ...args], { stdio: [opts.stdin ?? 'ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
  try {
    let stderr = '';
    child.stderr!.on('data', (b) => (stderr += b));
    child.stdout!.resume();
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('close', (code, sig) => r({ code, signal: sig })));
    const readiness = ready(child.pid!);
    if (readiness instanceof Promise) await Promise.race([readiness, exited]);
    else await new Promise((r) => setTimeout(r, 1500));
    assert.is(child.exitCode, null, `still running when interrupted: ${stderr}`);
    // Let it settle into the wait (the connection or open the readiness saw is just made).
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    child.kill(signal);
    const end = await Promise.race([exited, new Promise<undefined>((r) => setTimeout(r, 10_000))]);
    const ms = Date.now() - t0;
    assert.ok(end, `${args.join(' ')}: still running 10 s after ${signal}; stderr: ${stderr}`);
    return { ...end!, stderr, ms, pid: child.pid! };
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

/** Exit 130 within a few seconds, a one-line message, no stack trace, no temp dir of that process left. */
async function assertStopped(r: Interrupted & { pid: number }, what: string): Promise<void> {
  assert.is(r.code, 130, `${what}: exit code (signal ${r.signal}); stderr: ${r.stderr}`);
  assert.ok(r.ms < 5000, `${what}: took ${r.ms} ms to stop`);
  assert.match(r.stderr, /interrupted/, what);
  assert.not.match(r.stderr, /\n\s+at /, `${what}: no stack trace`);
  const left = (await readdir(join(env.root, 'tmp')).catch(() => [] as string[])).filter((n) => n.includes(`-${r.pid}-`) || n.includes(`.${r.pid}.`));
  assert.equal(left, [], `${what}: temp files left`);
}

test('pull, push, login and build --check stop while a registry hangs (SIGINT and SIGTERM)', async () => {
  const silent = await startSilentServer();
  try {
    const cases: [string, string[], NodeJS.Signals][] = [
      ['pull', ['pull', `${silent.host}/hangs:1`], 'SIGINT'],
      ['push', ['push', 'busybox', `${silent.host}/hangs:1`], 'SIGTERM'],
      ['login', ['login', '-u', 'u', '-p', 'p', silent.host], 'SIGINT'],
    ];
    for (const [what, args, signal] of cases) await assertStopped(await interrupt(args, () => silent.nextConnection(), signal), what);
    const ctx = await env.context(`FROM ${silent.host}/hangs:1\nRUN true\n`);
    await assertStopped(await interrupt(['build', '--check', ctx], () => silent.nextConnection(), 'SIGTERM'), 'build --check');
  } finally {
    await silent.close();
  }
});

test('build stops while ADD downloads from a server that hangs', async () => {
  const silent = await startSilentServer();
  try {
    const ctx = await env.context(`FROM busybox\nADD http://${silent.host}/big.bin /big.bin\n`);
    await assertStopped(await interrupt(['build', '-t', 'stop-add', '--progress', 'plain', ctx], () => silent.nextConnection(), 'SIGINT'), 'build ADD');
    assert.not.ok((await readFile(join(env.root, 'store/index.json'), 'utf8')).includes('stop-add'));
  } finally {
    await silent.close();
  }
});

test('run stops its container on SIGINT and SIGTERM', async () => {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    const r = await interrupt(['run', 'busybox', '--', 'sh', '-c', 'echo started >&2; sleep 60'], async () => {
      // `started` comes from inside the container: it runs.
      for (let i = 0; i < 200; i++) {
        // The container's shell, not tsbuild (whose own arguments hold the same words).
        const ps = execFileSync('ps', ['-eo', 'args']).toString().split('\n');
        if (ps.some((l) => l.startsWith('sh -c echo started'))) return;
        await new Promise((r) => setTimeout(r, 50));
      }
    }, signal);
    await assertStopped(r, `run (${signal})`);
    const ps = execFileSync('ps', ['-eo', 'args']).toString().split('\n');
    assert.not.ok(ps.some((l) => l.startsWith('sh -c echo started')), 'the container process is gone');
  }
});

test('build stops while it reads a huge context file', async () => {
  const ctx = await env.context('FROM scratch\nCOPY huge.bin /huge.bin\n');
  const huge = join(ctx, 'huge.bin');
  // Sparse: 64 GiB to read and hash, nothing on disk.
  await writeFile(huge, '');
  await truncate(huge, 64 * 2 ** 30);
  const reading = async (pid: number) => {
    for (let i = 0; i < 400; i++) {
      const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
      for (const fd of fds) if ((await readlinkOr(`/proc/${pid}/fd/${fd}`)) === huge) return;
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  await assertStopped(await interrupt(['build', '-t', 'stop-huge', '--progress', 'plain', ctx], reading, 'SIGTERM'), 'build with a huge context');
  assert.not.ok((await readFile(join(env.root, 'store/index.json'), 'utf8')).includes('stop-huge'));
});

async function readlinkOr(p: string): Promise<string | undefined> {
  return readlink(p).catch(() => undefined);
}

/** Writes a tar header for one big blob, then a little data every 200 ms until stopped: a slow, endless `docker save`. */
function slowTarWriter(fifo: string): { stop(): Promise<void> } {
  let stopped = false;
  const done = (async () => {
    // O_RDWR: never blocks waiting for the reader, and tsbuild never sees EOF because of us.
    const fh = await open(fifo, 'r+');
    try {
      const header = Buffer.alloc(512);
      header.write('blobs/sha256/' + 'a'.repeat(64), 0, 'latin1');
      header.write('0000644\0', 100, 'latin1');
      header.write('0000000\0', 108, 'latin1');
      header.write('0000000\0', 116, 'latin1');
      header.write('77777777777\0', 124, 'latin1');
      header.write('00000000000\0', 136, 'latin1');
      header.write('        ', 148, 'latin1');
      header[156] = 0x30;
      header.write('ustar\0' + '00', 257, 'latin1');
      let sum = 0;
      for (const b of header) sum += b;
      header.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
      await fh.write(header);
      while (!stopped) {
        await fh.write(Buffer.alloc(4096, 1)).catch(() => undefined);
        await new Promise((r) => setTimeout(r, 200));
      }
    } finally {
      await fh.close();
    }
  })();
  return {
    async stop() {
      stopped = true;
      await done;
    },
  };
}

test('load stops while a FIFO feeds it slowly, while a FIFO stays silent, and while stdin never ends', async () => {
  const fifo = join(env.work, 'load.fifo');
  execFileSync('mkfifo', [fifo]);
  try {
    const writer = slowTarWriter(fifo);
    try {
      // The slow member goes to a temp blob in the store: it must be gone after the interrupt.
      await assertStopped(await interrupt(['load', '-i', fifo], () => false, 'SIGINT'), 'load -i slow FIFO');
    } finally {
      await writer.stop();
    }
    await assertStopped(await interrupt(['load', '-i', fifo], () => false, 'SIGTERM'), 'load -i FIFO without a writer');
    await assertStopped(await interrupt(['load'], () => false, 'SIGINT', { stdin: 'pipe' }), 'load from a silent stdin');
  } finally {
    await rm(fifo, { force: true });
  }
});

test('load -i /dev/zero fails at once: an endless input is not drained', async () => {
  const t0 = Date.now();
  const r = await tsbuild(['--root', env.root, 'load', '-i', '/dev/zero']);
  assert.is(r.code, 2, r.stderr);
  assert.match(r.stderr, /not an image archive/);
  assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
});

test('du and prune observe the signal over a large tree', async () => {
  const root = join(env.work, 'big-root');
  const layer = join(root, 'layers', 'f'.repeat(64), 'diff');
  await mkdir(layer, { recursive: true });
  await mkdir(join(root, 'cache'));
  for (let d = 0; d < 40; d++) {
    await mkdir(join(layer, `d${d}`));
    await Promise.all(Array.from({ length: 250 }, (_, i) => writeFile(join(layer, `d${d}`, `f${i}`), 'x')));
  }
  const t0 = Date.now();
  await diskUsage(root);
  const full = Date.now() - t0;
  for (const [what, run] of [['du', (s: AbortSignal) => diskUsage(root, s)], ['prune', (s: AbortSignal) => prune(root, {}, s)]] as const) {
    const ac = new AbortController();
    const t1 = Date.now();
    setTimeout(() => ac.abort(Object.assign(new Error('stop'), { name: 'AbortError' })), 5);
    await run(ac.signal).then(
      () => assert.unreachable(`${what} finished (a full walk takes ${full} ms)`),
      (e: unknown) => assert.is((e as Error).name, 'AbortError', String((e as Error).stack)),
    );
    assert.ok(Date.now() - t1 < full, `${what} stopped before the end of the walk`);
  }
  assert.ok(existsSync(layer), 'the interrupted prune left the layer in place');
  await rm(root, { recursive: true, force: true });
});

test('a state root in / , /proc, /etc or /var/lib is refused at once, naming where it came from', async () => {
  for (const [args, source] of [
    [['--root', '/proc', 'du'], '--root'],
    [['--root', '/proc', 'images'], '--root'],
    [['--root', '/', 'prune'], '--root'],
    [['--root', '/etc', 'load', '-i', '/dev/null'], '--root'],
    [['--root', '/var/lib', 'build', env.work], '--root'],
  ] as const) {
    const t0 = Date.now();
    const r = await tsbuild(args);
    assert.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`^error: ${source} `));
    assert.ok(Date.now() - t0 < 5000);
  }
  const r = await tsbuild(['images'], { env: { TSBUILD_ROOT: '/sys' } });
  assert.is(r.code, 2, r.stderr);
  assert.match(r.stderr, /state root \(from \$TSBUILD_ROOT\) \/sys/);
  const file = join(env.work, 'root-is-a-file');
  await writeFile(file, '');
  const f = await tsbuild(['--root', file, 'du']);
  assert.is(f.code, 2, f.stderr);
  assert.match(f.stderr, /--root .*root-is-a-file: not a directory/);
});

test('a build context with a FIFO and a device node builds without reading them; /proc as context is refused', async () => {
  const ctx = await env.context('FROM busybox\nCOPY . /ctx/\nRUN test -p /ctx/pipe && test -c /ctx/zero && echo special-ok\n', { 'plain.txt': 'x' });
  execFileSync('mkfifo', [join(ctx, 'pipe')]);
  execFileSync('mknod', [join(ctx, 'zero'), 'c', '1', '5']);
  const t0 = Date.now();
  const r = await tsbuild(['--root', env.root, 'build', '--progress', 'plain', '--no-cache', ctx]);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stderr, /special-ok/);
  assert.ok(Date.now() - t0 < 60_000);
  const proc = await tsbuild(['--root', env.root, 'build', '-f', join(ctx, 'Dockerfile'), '/proc']);
  assert.is(proc.code, 2, proc.stderr);
  assert.match(proc.stderr, /build context \/proc: \/proc holds kernel interfaces/);
});

test('an output in / or a system directory is refused before the build, naming the flag, and nothing is written', async () => {
  // Symlinks in a temp dir stand for / and /etc: the real places are never named directly, and
  // the build's only file has a unique name, so a wrong check would be seen (and is cleaned up).
  const canary = `tsbuild-canary-${process.pid}-${Date.now()}`;
  const links = join(env.work, 'links');
  await mkdir(links, { recursive: true });
  await symlink('/', join(links, 'to-root'));
  await symlink('/etc', join(links, 'to-etc'));
  await symlink(`/etc/${canary}.dangling`, join(links, 'dangling'));
  const ctx = await env.context(`FROM scratch\nCOPY ${canary} /${canary}\n`, { [canary]: 'canary\n' });
  const places = [`/${canary}`, `/etc/${canary}`, `/etc/${canary}.iid`, `/etc/${canary}.json`, `/etc/${canary}.tar`, `/etc/${canary}.dangling`, `/etc/${canary}-cache`, `/etc/${canary}-oci`];
  try {
    const cases: [string[], string][] = [
      [['build', '--output', `type=local,dest=${links}/to-root`, ctx], '--output'],
      [['build', '-o', `${links}/to-root`, ctx], '--output'],
      [['build', '--output', `type=oci,dest=${links}/to-etc/${canary}-oci,tar=false`, ctx], '--output'],
      [['build', '--output', `type=tar,dest=${links}/to-etc/${canary}.tar`, ctx], '--output'],
      [['build', '--output', `type=docker,dest=${links}/dangling`, ctx], '--output'],
      [['build', '--iidfile', `${links}/to-etc/${canary}.iid`, ctx], '--iidfile'],
      [['build', '--metadata-file', `${links}/to-etc/${canary}.json`, ctx], '--metadata-file'],
      [['build', '--cache-to', `type=local,dest=${links}/to-etc/${canary}-cache`, ctx], '--cache-to'],
    ];
    for (const [args, flag] of cases) {
      const r = await tsbuild(['--root', env.root, ...args]);
      assert.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.ok(r.stderr.startsWith(`error: ${flag} `), r.stderr);
      assert.match(r.stderr, /refusing to write there/);
    }
    // The build never ran: its unique file is nowhere in the store.
    await tsbuild(['--root', env.root, 'build', '-t', 'canary-img', ctx]).then((r) => assert.is(r.code, 0, r.stderr));
    for (const [args, flag] of [
      [['save', 'canary-img', '-o', `${links}/to-etc/${canary}.tar`], '-o, --output'],
      [['export', 'canary-img', '-o', `${links}/to-root`], '-o, --output'],
      [['push', 'canary-img', '127.0.0.1:1/x', '--metadata-file', `${links}/dangling`], '--metadata-file'],
    ] as const) {
      const r = await tsbuild(['--root', env.root, ...args]);
      assert.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.ok(r.stderr.startsWith(`error: ${flag} `), r.stderr);
    }
    for (const p of places) assert.not.ok(existsSync(p), `${p} was written`);
    // An archive written through a symlink (as /dev/stdout is one) goes into its target; the
    // link is not replaced, and no temp file lands beside it.
    await writeFile(join(links, 'target.tar'), '');
    await symlink('target.tar', join(links, 'stdout-like'));
    const saved = await tsbuild(['--root', env.root, 'save', 'canary-img', '-o', join(links, 'stdout-like')]);
    assert.is(saved.code, 0, saved.stderr);
    assert.ok((await lstat(join(links, 'stdout-like'))).isSymbolicLink(), 'the link is still a link');
    assert.ok((await readFile(join(links, 'target.tar'))).includes('index.json'));
    assert.equal((await readdir(links)).filter((n) => n.endsWith('.tmp')), []);
    // Streams stay fine: --iidfile /dev/null, and an ordinary dest beside the links.
    const ok = await tsbuild(['--root', env.root, 'build', '--iidfile', '/dev/null', '--output', `type=local,dest=${join(links, 'out')}`, ctx]);
    assert.is(ok.code, 0, ok.stderr);
    assert.is(await readFile(join(links, 'out', canary), 'utf8'), 'canary\n');
  } finally {
    for (const p of places) await rm(p, { recursive: true, force: true });
    await tsbuild(['--root', env.root, 'rmi', 'canary-img']);
  }
});

test('type=local into a dest that holds symlinks replaces them and writes nothing through them', async () => {
  const ctx = await env.context('FROM scratch\nCOPY etc /etc\nCOPY a /a\n', { 'etc/x': 'new\n', a: 'new\n' });
  const outside = join(env.work, 'outside');
  const dest = join(env.work, 'dest-with-links');
  await mkdir(outside);
  await mkdir(dest);
  await writeFile(join(outside, 'x'), 'old\n');
  await writeFile(join(outside, 'a'), 'old\n');
  await symlink(outside, join(dest, 'etc'));
  await symlink(join(outside, 'a'), join(dest, 'a'));
  const r = await tsbuild(['--root', env.root, 'build', '--output', `type=local,dest=${dest}`, ctx]);
  assert.is(r.code, 0, r.stderr);
  assert.is(await readFile(join(outside, 'x'), 'utf8'), 'old\n');
  assert.is(await readFile(join(outside, 'a'), 'utf8'), 'old\n');
  assert.ok((await lstat(join(dest, 'etc'))).isDirectory());
  assert.is(await readFile(join(dest, 'a'), 'utf8'), 'new\n');
});

test.run();

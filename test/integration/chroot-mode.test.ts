import { execFile, execFileSync, spawn } from 'node:child_process';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { buildBusyboxBase } from '../helpers/base-image.js';
import { useBuildRoot } from '../helpers/build-root.js';
import { CLI, tsbuildOk, tsbuildWithoutSysAdmin, type CliResult } from '../helpers/cli.js';
import { cached, rawjsonEvents, started } from '../helpers/progress-events.js';
import { diffTrees, snapshotTree } from '../helpers/tree-compare.js';
import { RuncSandbox } from '../../src/runtime/runc.js';
import type { BindMount } from '../../src/runtime/spec.js';
import { nullSink } from '../../src/events.js';

/**
 * Isolation chroot against the default mode: the same Dockerfile built as real root (overlayfs,
 * runc) and as root without CAP_SYS_ADMIN (`capsh --drop=cap_sys_admin`, where mount fails)
 * with `--isolation chroot` must give the same layers, entry for entry (whiteouts, opaque
 * directories, hardlinks, owners, modes), and the same final tree.
 */
const test = suite('integration/chroot-mode');
const env = useBuildRoot(test, 'chroot');
const run = promisify(execFile);

const DOCKERFILE = `FROM busybox AS base
RUN mkdir -p /d/sub /keep && echo 1 > /d/sub/f && echo k > /keep/k && echo a > /a && echo b > /b && rm /bin/vi
RUN echo more >> /a && rm /b && rm -rf /d && mkdir /d && echo 2 > /d/g && ln /a /a2 && chown 1000:1000 /a && chmod 0600 /keep/k && mkfifo /fifo && ln -s /a /sym && rm -rf /keep && mkdir /keep
RUN --mount=type=cache,target=/cache echo run >> /cache/log && cp /cache/log /cachelog && ls /cache > /cachels
COPY --chown=1000:1000 ctxfile /ctxfile
WORKDIR /w/x
RUN pwd > here && test ! -e /dev/sda && echo nameserver-lines: $(grep -c . /etc/resolv.conf) > /dev/null
USER app
RUN echo hi > /tmp/app && id > /tmp/id
FROM busybox
COPY --from=base /a /d/g /copied/
COPY --from=base /tmp/id /id
RUN touch /final && mkdir -p /etc/extra && echo x > /etc/extra/x
`;

async function noAdminOk(args: readonly string[]): Promise<CliResult> {
  const r = await tsbuildWithoutSysAdmin(args);
  if (r.code !== 0) throw new Error(`tsbuild ${args.join(' ')} exited ${r.code}\n${r.stderr}`);
  return r;
}

/** Each layer of an OCI layout tar as `tar -tv` lines (numeric owners), without the dates. */
async function layerListings(ociTar: string, scratch: string): Promise<string[][]> {
  await mkdir(scratch, { recursive: true });
  await run('tar', ['-xf', ociTar, '-C', scratch]);
  const blob = (d: string) => join(scratch, 'blobs/sha256', d.split(':')[1]!);
  const index = JSON.parse(await readFile(join(scratch, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const manifest = JSON.parse(await readFile(blob(index.manifests[0]!.digest), 'utf8')) as { layers: { digest: string }[] };
  const out: string[][] = [];
  for (const l of manifest.layers) {
    const { stdout } = await run('tar', ['--numeric-owner', '-tvzf', blob(l.digest)]);
    out.push(
      stdout
        .split('\n')
        .filter(Boolean)
        .map((line) => {
          const f = line.split(/\s+/);
          // perm owner size date time name [-> target | link to target]
          return [f[0], f[1], f[2], ...f.slice(5)].join(' ');
        })
        .sort(),
    );
  }
  return out;
}

function strayProcesses(marker: string): number[] {
  try {
    return execFileSync('pgrep', ['-x', '-f', marker]).toString().split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

test('the same Dockerfile gives the same layers and tree with --isolation chroot (no CAP_SYS_ADMIN) as with overlay', async () => {
  const ctx = await env.context(DOCKERFILE, { ctxfile: 'from the context\n' });
  const chrootRoot = join(env.work, 'chroot-root');
  await buildBusyboxBase(chrootRoot);
  const out = (name: string) => join(env.work, name);

  for (const target of ['base', 'final']) {
    const t = target === 'base' ? ['--target', 'base'] : [];
    await tsbuildOk(['--root', env.root, 'build', '--isolation', 'overlay', ...t, '--output', `type=oci,dest=${out(`overlay-${target}.tar`)}`, ctx]);
    const r = await noAdminOk(['--root', chrootRoot, 'build', '--isolation', 'chroot', ...t, '--progress', 'rawjson', '--output', `type=oci,dest=${out(`chroot-${target}.tar`)}`, ctx]);
    assert.match(r.stderr, /chroot/);
    if (target === 'base') assert.ok(started(rawjsonEvents(r.stderr)).some((s) => s.includes('RUN --mount=type=cache')), 'the RUN steps ran');
    const want = await layerListings(out(`overlay-${target}.tar`), out(`ov-${target}`));
    const got = await layerListings(out(`chroot-${target}.tar`), out(`ch-${target}`));
    assert.is(got.length, want.length, 'as many layers');
    for (let i = 0; i < want.length; i++) assert.equal(got[i], want[i], `${target} layer ${i}`);
    // What the layers must hold at all, so that equal listings mean something.
    const all = got.flat().join('\n');
    const expected = target === 'base' ? ['d/.wh..wh..opq', 'keep/.wh..wh..opq', '.wh.b', 'bin/.wh.vi', 'a2 link to a', '1000/1000 17 ctxfile', 'w/x/here', '1000/1000 3 tmp/app'] : ['copied/a', 'copied/g', 'final', 'etc/extra/x'];
    for (const entry of expected) assert.ok(all.includes(entry), `${target} layers hold ${entry}:\n${all}`);
    if (target === 'base') assert.match(all, /^p.* fifo$/m, 'the fifo');
    assert.not.match(all, /(^| )(dev|proc|sys)\/./m, 'nothing of /dev, /proc, /sys in a layer');
    assert.not.match(all, /etc\/(hosts|resolv\.conf)/, 'no /etc/hosts or /etc/resolv.conf in a layer');
  }

  // The final trees agree too.
  await tsbuildOk(['--root', env.root, 'build', '--isolation', 'overlay', '--output', `type=local,dest=${out('overlay-tree')}`, ctx]);
  await noAdminOk(['--root', chrootRoot, 'build', '--isolation', 'chroot', '--output', `type=local,dest=${out('chroot-tree')}`, ctx]);
  assert.equal(diffTrees(await snapshotTree(out('overlay-tree')), await snapshotTree(out('chroot-tree'))), []);

  // A rebuild runs nothing.
  const again = rawjsonEvents((await noAdminOk(['--root', chrootRoot, 'build', '--isolation', 'chroot', '--progress', 'rawjson', ctx])).stderr);
  assert.equal(started(again), [], 'nothing ran');
  assert.ok(cached(again).length >= 8, `every step CACHED: ${cached(again).join(', ')}`);

  // Nothing left: no working dirs, no private temp dirs.
  assert.equal(await readdir(join(chrootRoot, 'copies')), []);
  assert.equal((await readdir(join(chrootRoot, 'tmp'))).filter((n) => !n.startsWith('.')), []);
  await rm(chrootRoot, { recursive: true, force: true });
});

test('isolation chroot refuses RUN --network=none by name, and leaves no process behind', async () => {
  const chrootRoot = join(env.work, 'chroot-root2');
  await buildBusyboxBase(chrootRoot);
  try {
    const none = await env.context('FROM busybox\nRUN --network=none true\n');
    const r = await tsbuildWithoutSysAdmin(['--root', chrootRoot, 'build', '--isolation', 'chroot', none]);
    assert.is(r.code, 1, r.stderr);
    assert.match(r.stderr, /isolation chroot cannot give RUN --network=none a private network/);
    assert.match(r.stderr, /Dockerfile:2/);
    assert.match(r.stderr, /--isolation overlay or rootless/);

    // A daemon the RUN starts and leaves behind is killed with it, as runc kills the pid namespace.
    // (busybox picks its applet by argv[0], so the marker is the sleep's unusual length.)
    const marker = `sleep ${300000 + (process.pid % 100000)}`;
    const daemon = await env.context(`FROM busybox\nRUN (setsid ${marker} >/dev/null 2>&1 &) ; (${marker} >/dev/null 2>&1 &) ; sleep 0.2; echo started\n`);
    await noAdminOk(['--root', chrootRoot, 'build', '--isolation', 'chroot', daemon]);
    const left = strayProcesses(marker);
    for (const pid of left) process.kill(pid, 'SIGKILL');
    assert.equal(left, [], 'no process of the RUN outlives it');
    assert.equal(await readdir(join(chrootRoot, 'copies')), []);
  } finally {
    await rm(chrootRoot, { recursive: true, force: true });
  }
});

test('a build killed mid-RUN leaves nothing that the next build does not remove (working dirs, the command)', async () => {
  const chrootRoot = join(env.work, 'chroot-root4');
  await buildBusyboxBase(chrootRoot);
  const marker = `sleep ${500000 + (process.pid % 100000)}`;
  try {
    const ctx = await env.context(`FROM busybox\nRUN echo a > /a\nRUN ${marker}\n`);
    const child = spawn('capsh', ['--drop=cap_sys_admin', '--', '-c', 'exec "$0" "$@"', process.execPath, CLI, '--root', chrootRoot, 'build', '--isolation', 'chroot', ctx], { stdio: 'ignore' });
    const deadline = Date.now() + 20_000;
    while (strayProcesses(marker).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.ok(strayProcesses(marker).length > 0, 'the RUN started');
    const workingDirs = await readdir(join(chrootRoot, 'copies'));
    assert.ok(workingDirs.length > 0, 'a working dir exists while the RUN runs');
    child.kill('SIGKILL');
    await new Promise((r) => child.once('close', r));
    // The helper dies with tsbuild (parent-death signal), and the command with the helper.
    for (let i = 0; i < 100 && strayProcesses(marker).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    const left = strayProcesses(marker);
    for (const pid of left) process.kill(pid, 'SIGKILL');
    assert.equal(left, [], 'the RUN died with the build');
    const next = await env.context('FROM busybox\nRUN echo b > /b\n');
    await noAdminOk(['--root', chrootRoot, 'build', '--isolation', 'chroot', next]);
    assert.equal(await readdir(join(chrootRoot, 'copies')), [], 'the dead build\'s working dir is gone');
    assert.equal((await readdir(join(chrootRoot, 'tmp'))).filter((n) => !n.startsWith('.')), []);
  } finally {
    await rm(chrootRoot, { recursive: true, force: true });
  }
});

/**
 * Runs the tsbuild CLI as root in a container as strict as a default Docker one: runc with
 * Docker's default capabilities (no CAP_SYS_ADMIN), tsbuild's RUN seccomp filter (mount,
 * pivot_root, setns, unshare/clone of a user namespace refused), its own pid/ipc/uts/mount
 * namespaces, the device cgroup denying every device but runc's defaults. The host's /usr,
 * /etc, this checkout and `work` are bound in (`work` read-write).
 */
async function tsbuildInDockerLikeContainer(work: string, args: readonly string[]): Promise<CliResult> {
  const rootfs = await mkdtemp(join(work, 'container-rootfs-'));
  const scratch = await mkdtemp(join(work, 'container-runc-'));
  const checkout = join(CLI, '../../..'); // CLI is <checkout>/dist/bin/tsbuild.cjs
  const mounts: BindMount[] = [{ destination: '/tmp', source: 'tmpfs', type: 'tmpfs', options: ['nosuid', 'nodev'] }];
  for (const top of ['bin', 'sbin', 'lib', 'lib64', 'usr', 'etc']) {
    const st = await lstat(`/${top}`).catch(() => undefined);
    if (st?.isSymbolicLink()) await symlink(await readlink(`/${top}`), join(rootfs, top));
    else if (st?.isDirectory()) mounts.push({ destination: `/${top}`, source: `/${top}`, type: 'bind', options: ['rbind', 'ro'] });
  }
  mounts.push({ destination: checkout, source: checkout, type: 'bind', options: ['rbind', 'ro'] });
  mounts.push({ destination: work, source: work, type: 'bind', options: ['rbind', 'rw'] });
  let stdout = '';
  let stderr = '';
  try {
    const sandbox = new RuncSandbox({ stateRoot: join(scratch, 'state'), bundleRoot: scratch });
    const r = await sandbox.run(
      {
        rootfs,
        args: [process.execPath, CLI, ...args],
        env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'NO_COLOR=1', 'HOME=/root'],
        cwd: '/',
        uid: 0,
        gid: 0,
        additionalGids: [],
        hostname: 'docker-like',
        network: 'host',
        mounts,
      },
      { onOutput: (stream, chunk) => (stream === 1 ? (stdout += chunk.toString()) : (stderr += chunk.toString())) },
      { signal: new AbortController().signal, events: nullSink },
    );
    return { code: r.exitCode, stdout, stderr };
  } finally {
    await rm(rootfs, { recursive: true, force: true });
    await rm(scratch, { recursive: true, force: true });
  }
}

test('in a container as strict as a default Docker one (no CAP_SYS_ADMIN, seccomp refusing mount and user namespaces) isolation chroot builds the same layers', async () => {
  const ctx = await env.context(DOCKERFILE, { ctxfile: 'from the context\n' });
  const chrootRoot = join(env.work, 'chroot-root3');
  await buildBusyboxBase(chrootRoot);
  const out = (name: string) => join(env.work, name);
  try {
    await tsbuildOk(['--root', env.root, 'build', '--isolation', 'overlay', '--target', 'base', '--output', `type=oci,dest=${out('ov3.tar')}`, ctx]);
    // First what the container refuses, so that the build below proves something.
    const probe = await tsbuildInDockerLikeContainer(env.work, ['--root', chrootRoot, 'build', '--isolation', 'overlay', ctx]);
    assert.is.not(probe.code, 0, 'overlay is refused in there');
    assert.match(probe.stderr, /CAP_SYS_ADMIN|not possible/);
    const r = await tsbuildInDockerLikeContainer(env.work, ['--root', chrootRoot, 'build', '--target', 'base', '--output', `type=oci,dest=${out('ch3.tar')}`, ctx]);
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stderr, /isolation: chroot/, 'auto picks chroot there');
    const want = await layerListings(out('ov3.tar'), out('ov3'));
    const got = await layerListings(out('ch3.tar'), out('ch3'));
    assert.equal(got, want);
    assert.equal(await readdir(join(chrootRoot, 'copies')), []);
  } finally {
    await rm(chrootRoot, { recursive: true, force: true });
  }
});

test.run();

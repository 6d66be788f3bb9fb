import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { copyFile, lstat, mkdir, mkdtemp, open, readdir, readFile, readlink, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { useBuildRoot } from '../helpers/build-root.js';
import { BUSYBOX } from '../helpers/busybox-rootfs.js';
import { CLI, tsbuild, tsbuildOk } from '../helpers/cli.js';
import { loadHostBase } from '../helpers/host-base-image.js';
import { startRegistry } from '../helpers/registry.js';
import { tool } from '../helpers/run-tool.js';

/**
 * tsbuild's own CI image (the repository's Dockerfile), built by tsbuild from the repository on
 * a base made offline from this host's binaries, then used as CI uses it: inside `tsbuild run`,
 * a default container (Docker's capabilities, no CAP_SYS_ADMIN, a seccomp filter refusing mount
 * and user namespaces), it builds a Dockerfile in isolation chroot and streams the image as an
 * OCI archive on standard output.
 */
const test = suite('integration/tsbuild-image');
const env = useBuildRoot(test, 'tsbuild-image');
/** The checkout: `npm test` has built dist/ and native/build/Release there first. */
const REPO = fileURLToPath(new URL('../../..', import.meta.url));

test.before(async () => {
  await loadHostBase(env.root, 'host-base');
});

/** The Dockerfile built inside: a busybox base made there, then RUNs that add, change and delete. */
const INNER = [
  'FROM scratch',
  'COPY busybox /bin/busybox',
  'RUN ["/bin/busybox", "--install", "-s", "/bin"]',
  'RUN echo made > /made && echo old > /changed && echo gone > /gone && mkdir -p /d/e && echo deep > /d/e/f',
  'RUN echo new > /changed && rm /gone && chmod 600 /made',
  '',
].join('\n');

let built = false;
/** Builds `tsbuild` into the test root once (both tests need it). */
async function buildImage(): Promise<void> {
  if (built) return;
  await tsbuildOk(['--root', env.root, 'build', '-t', 'tsbuild', '--build-arg', 'BASE=host-base', REPO]);
  built = true;
}

test('the Dockerfile at the root builds tsbuild\'s image: runtime files only, tsbuild as entrypoint, chroot inside a default container', async () => {
  await buildImage();
  const inspected = JSON.parse((await tsbuildOk(['--root', env.root, 'inspect', 'tsbuild'])).stdout) as { Config: { config: Record<string, unknown> } };
  const cfg = inspected.Config.config;
  assert.equal(cfg['Entrypoint'], ['tsbuild']);
  assert.is(cfg['WorkingDir'], '/workspace');
  assert.ok((cfg['Env'] as string[]).includes('TSBUILD_ROOT=/var/lib/tsbuild'), String(cfg['Env']));
  assert.ok((cfg['Env'] as string[]).includes('DOCKER_CONFIG=/root/.docker'), String(cfg['Env']));
  assert.equal(Object.keys(cfg['Volumes'] as object), ['/var/lib/tsbuild']);

  const out = await mkdtemp(join(env.work, 'export-'));
  try {
    await tsbuildOk(['--root', env.root, 'export', 'tsbuild', '-o', out]);
    const app = join(out, 'opt/tsbuild');
    // The bundle holds the npm dependencies: no node_modules, no tsc output, tests or benches.
    assert.equal((await readdir(app)).sort(), ['dist', 'native', 'package.json']);
    assert.equal((await readdir(join(app, 'dist'))).sort(), ['bin'], 'only the bundle');
    // Every addon and helper npm run build made, and none of node-gyp's objects.
    const made = (await readdir(join(REPO, 'native/build/Release'))).filter((n) => n !== 'obj.target' && n !== '.deps').sort();
    assert.ok(made.includes('fsx.node'), made.join(' '));
    assert.equal((await readdir(join(app, 'native/build/Release'))).sort(), made);
    assert.is(await readlink(join(out, 'usr/local/bin/tsbuild')), '/opt/tsbuild/dist/bin/tsbuild.cjs');
    assert.is((await lstat(join(app, 'dist/bin/tsbuild.cjs'))).mode & 0o111, 0o111, 'tsbuild.cjs executable');
    for (const junk of ['opt/tsbuild/.git', 'opt/tsbuild/src', 'opt/tsbuild/test', '.git', 'src', 'workspace/.git']) assert.not.ok(await exists(join(out, junk)), `${junk} kept out`);
  } finally {
    await rm(out, { recursive: true, force: true });
  }

  // In tsbuild's run sandbox (the default container), auto picks chroot: no CAP_SYS_ADMIN, user namespaces refused.
  const info = JSON.parse((await tsbuildOk(['--root', env.root, 'run', 'tsbuild', '--', 'info', '--format', 'json'])).stdout) as {
    root: string;
    isolation: { mode: string };
    probe: { capSysAdmin: boolean; capSysChroot: boolean; seccompFilter: boolean; userNamespaces: unknown };
    versions: { runc: string; slirp4netns: string; newuidmap: string };
  };
  assert.is(info.root, '/var/lib/tsbuild');
  assert.is(info.isolation.mode, 'chroot', JSON.stringify(info));
  assert.is(info.probe.capSysAdmin, false);
  assert.is(info.probe.capSysChroot, true);
  assert.is(info.probe.seccompFilter, true);
  assert.is.not(info.probe.userNamespaces, true);
  assert.match(info.versions.runc, /^runc version/);
  assert.match(info.versions.slirp4netns, /^slirp4netns version/);
  assert.is(info.versions.newuidmap, '/usr/bin/newuidmap');
});

test('inside tsbuild run, the image builds a Dockerfile in isolation chroot and streams an OCI archive that skopeo and umoci read', async () => {
  await buildImage();
  const ctx = await env.context('FROM tsbuild\nCOPY ctx /ctx\n', { 'ctx/Dockerfile': INNER });
  await copyFile(BUSYBOX, join(ctx, 'ctx/busybox'));
  await tsbuildOk(['--root', env.root, 'build', '-t', 'tsbuild-job', ctx]);

  const dir = await mkdtemp(join(env.work, 'job-'));
  try {
    const archive = join(dir, 'image.tar');
    // The store goes on a tmpfs, as on a volume under docker or Kubernetes: not the container's overlay root.
    const r = await runToFile(['--root', env.root, 'run', '--tmpfs', '/var/lib/tsbuild', 'tsbuild-job', '--', 'build', '-t', 'inner:1', '--output', 'type=oci,dest=-', '/ctx'], archive);
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stderr.split('\n')[0]!, /^#0 isolation: chroot \(root without CAP_SYS_ADMIN/);

    const inspect = JSON.parse(await tool('skopeo', ['inspect', `oci-archive:${archive}`])) as { Layers: string[] };
    assert.is(inspect.Layers.length, 4, 'COPY and three RUNs');

    const layout = join(dir, 'layout');
    await mkdir(layout);
    await tool('tar', ['-xf', archive, '-C', layout]);
    await tool('umoci', ['unpack', '--image', `${layout}:1`, join(dir, 'bundle')]);
    const rootfs = join(dir, 'bundle/rootfs');
    assert.is(await readFile(join(rootfs, 'made'), 'utf8'), 'made\n');
    assert.is((await lstat(join(rootfs, 'made'))).mode & 0o777, 0o600, 'chmod in a later RUN');
    assert.is(await readFile(join(rootfs, 'changed'), 'utf8'), 'new\n');
    assert.is(await readFile(join(rootfs, 'd/e/f'), 'utf8'), 'deep\n');
    assert.not.ok(await exists(join(rootfs, 'gone')), 'deleted by the last RUN');
    assert.is(await readlink(join(rootfs, 'bin/sh')), '/bin/busybox');

    // The deletion is a whiteout in the last layer, as overlay would have recorded it.
    const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    const manifest = JSON.parse(await readFile(blob(layout, index.manifests[0]!.digest), 'utf8')) as { layers: { digest: string }[] };
    const last = (await tool('tar', ['-tf', blob(layout, manifest.layers.at(-1)!.digest)])).split('\n').filter(Boolean).sort();
    assert.equal(last, ['.wh.gone', 'changed', 'made']);

    // Without a volume the store sits on the container's own overlay root, which refuses whiteouts: said before anything runs.
    const noVolume = await runToFile(['--root', env.root, 'run', 'tsbuild-job', '--', 'build', '-t', 'inner:1', '/ctx'], join(dir, 'unused.tar'));
    assert.is(noVolume.code, 2, noVolume.stderr);
    assert.match(noVolume.stderr, /the store at \/var\/lib\/tsbuild cannot hold deletions: making a whiteout \(a 0:0 character device\) there fails with EPERM/);
    assert.match(noVolume.stderr, /the store is on overlayfs \(a container's own root filesystem\): put it on a volume/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('as a CI step, the image pushes with the credentials of $DOCKER_CONFIG/config.json, and without them it is refused', async () => {
  await buildImage();
  const reg = await startRegistry({ kind: 'htpasswd', user: 'ci', password: 'push-pw' });
  try {
    const config = JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from('ci:push-pw').toString('base64') } } });
    const files = { 'ctx/Dockerfile': INNER, 'config.json': config };
    const anon = await env.context('FROM tsbuild\nCOPY ctx /ctx\n', files);
    const authed = await env.context('FROM tsbuild\nCOPY ctx /ctx\nCOPY config.json /root/.docker/config.json\n', files);
    for (const c of [anon, authed]) await copyFile(BUSYBOX, join(c, 'ctx/busybox'));
    await tsbuildOk(['--root', env.root, 'build', '-t', 'push-anon', anon]);
    await tsbuildOk(['--root', env.root, 'build', '-t', 'push-authed', authed]);
    // The job shares the host's network (tsbuild run's default), where the registry listens on 127.0.0.1.
    const job = (image: string) => tsbuild(['--root', env.root, 'run', '--tmpfs', '/var/lib/tsbuild', image, '--', 'build', '--push', '-t', `${reg.host}/team/app:1`, '/ctx']);

    const refused = await job('push-anon');
    assert.is(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /requires authentication and no credentials are stored for it/);

    const pushed = await job('push-authed');
    assert.is(pushed.code, 0, pushed.stderr);
    assert.match(pushed.stderr.split('\n')[0]!, /^#0 isolation: chroot /);
    const inspect = JSON.parse(await tool('skopeo', ['inspect', '--tls-verify=false', '--creds', 'ci:push-pw', `docker://${reg.host}/team/app:1`])) as { Layers: string[] };
    assert.is(inspect.Layers.length, 4);
  } finally {
    await reg.stop();
  }
});

test('tsbuild run --tmpfs takes only an absolute path', async () => {
  for (const bad of ['var/lib/tsbuild', '/', '/x:size=1m', '/a/../b']) {
    const r = await tsbuild(['--root', env.root, 'run', '--tmpfs', bad, 'busybox', '--', 'true']);
    assert.is(r.code, 2, r.stderr);
    assert.match(r.stderr, /--tmpfs .*: give an absolute container path/);
  }
});

/** Runs tsbuild with its standard output written to `file` (binary), stderr collected. */
async function runToFile(args: readonly string[], file: string): Promise<{ code: number | null; stderr: string }> {
  const fh = await open(file, 'w');
  try {
    return await new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', fh.fd, 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
      let stderr = '';
      child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stderr }));
    });
  } finally {
    await fh.close();
  }
}

function blob(layout: string, digest: string): string {
  return join(layout, 'blobs', ...digest.split(':'));
}

async function exists(p: string): Promise<boolean> {
  return lstat(p).then(
    () => true,
    () => false,
  );
}

test.run();

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { chmod, chown, lstat, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeBusyboxRootfs } from '../helpers/busybox-rootfs.js';
import { withBuildUser, type BuildUser } from '../helpers/build-user.js';
import { CLI, collect, tsbuild, tsbuildWithoutSysAdmin, type CliResult } from '../helpers/cli.js';
import { mountsUnder } from '../helpers/mounts.js';
import { cached, rawjsonEvents, started } from '../helpers/progress-events.js';
import { tool } from '../helpers/run-tool.js';
import { diffTrees, snapshotTree, type TreeNode } from '../helpers/tree-compare.js';
import { verifyStore } from '../helpers/verify-store.js';
import { lgetxattr, llistxattr } from '../../src/oci/native-fs.js';

/**
 * Rootless mode end to end: the same Dockerfile built as root, as a user with subordinate ids
 * (tsbuild re-executes itself in a user namespace: newuidmap, overlay with userxattr, runc
 * rootless) and as root without CAP_SYS_ADMIN (capsh; identity-mapped user namespace) gives the
 * same image tree (names, types, modes, owners, content, xattrs: unpacked by umoci); a no-op
 * rebuild is all CACHED in every mode; nothing is left mounted or running. A user without
 * subordinate ids gets one warning and an image whose other owners became root.
 */
const test = suite('integration/rootless');

/** Whiteouts, an opaque dir, hardlinks, chown, setuid, USER, COPY --chown, a cache mount, a second stage, an xattr from the context. */
const DOCKERFILE = `FROM busybox AS base
RUN mkdir -p /d/sub /keep /own && echo one > /d/sub/f && echo k > /keep/k && ln /keep/k /keep/k2 && echo gone > /gone \\
 && echo o > /own/f && chown -R 1000:1000 /own && chmod 4755 /own/f && chown 123:456 /keep/k2 && mkfifo /keep/fifo
RUN rm /gone && rm -rf /d && mkdir /d && echo two > /d/new && echo more >> /keep/k && chmod 640 /keep/k && rm /bin/vi
RUN --mount=type=cache,target=/cache,uid=1000,gid=1000 echo c >> /cache/count && cp /cache/count /counted && stat -c '%u %g %a %n' /cache /cache/count > /cache-owner
USER 1000
RUN mkdir /tmp/appdir && echo app > /tmp/appdir/f
USER root
COPY --chown=1000:1000 ctx.txt /ctx/
COPY xattr.txt /ctx/

FROM busybox AS helper
RUN mkdir /h && echo h > /h/f && chown -R 5:6 /h

FROM base
COPY --from=helper /h /h2
COPY --from=helper --chown=2000:3000 /h /h3
RUN ln -s /keep/k /link && id > /id
USER 1000
`;

interface Mode {
  readonly name: string;
  /** Runs tsbuild with `args` in this mode. */
  tsbuild(args: readonly string[]): Promise<CliResult>;
}

let work = '';
test.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'tsbuild-rootless-'));
  await chmod(work, 0o755); // the test users read the contexts below it
});
test.after(async () => {
  await rm(work, { recursive: true, force: true });
});

/** A context dir readable by everyone, with the busybox rootfs (for the base image) and the test's files. */
async function makeContext(files: Readonly<Record<string, string>>): Promise<string> {
  const ctx = await mkdtemp(join(work, 'ctx-'));
  await chmod(ctx, 0o755);
  await makeBusyboxRootfs(join(ctx, 'rootfs'));
  for (const [p, content] of Object.entries(files)) await writeFile(join(ctx, p), content, { mode: 0o644 });
  await tool('chmod', ['-R', 'a+rX', ctx]);
  return ctx;
}

/** A dir `owner` may write to (the image layout is exported there). */
async function outDir(owner?: BuildUser): Promise<string> {
  const dir = await mkdtemp(join(work, 'out-'));
  if (owner) await chown(dir, owner.uid, owner.gid);
  return dir;
}

function ok(r: CliResult, what: string): CliResult {
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}\n--- stderr ---\n${r.stderr}\n--- stdout ---\n${r.stdout}`);
  return r;
}

/** Every path of the image with its xattrs (tree-compare leaves them out). */
async function xattrs(dir: string, tree: ReadonlyMap<string, TreeNode>): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const [p, n] of tree) {
    if (n.type === 'symlink') continue;
    const abs = join(dir, p);
    for (const name of llistxattr(abs).sort()) out.set(`${p} ${name}`, lgetxattr(abs, name)?.toString('hex') ?? '');
  }
  return out;
}

/**
 * Builds the base image and the test image in `mode`, exports it as an OCI layout into `out`,
 * rebuilds it (must be all CACHED) and returns the unpacked tree and xattrs.
 */
async function buildIn(mode: Mode, root: string | undefined, ctx: string, out: string): Promise<{ tree: Map<string, TreeNode>; xattrs: Map<string, string>; stderr: string }> {
  const rootArgs = root ? ['--root', root] : [];
  ok(await mode.tsbuild([...rootArgs, 'build', '-f', join(ctx, 'Base.Dockerfile'), '-t', 'busybox', ctx]), `${mode.name}: base image`);
  const layout = join(out, 'img');
  const args = [...rootArgs, 'build', '--progress', 'rawjson', '-t', 'rl:v1', '--output', `type=oci,dest=${layout},tar=false`, ctx];
  const first = ok(await mode.tsbuild(args), `${mode.name}: build`);
  assert.ok(started(rawjsonEvents(first.stderr)).some((n) => n.includes('RUN rm /gone')), `${mode.name}: the RUN steps ran`);
  const again = rawjsonEvents(ok(await mode.tsbuild(args), `${mode.name}: rebuild`).stderr);
  assert.equal(started(again), [], `${mode.name}: no-op rebuild runs nothing`);
  assert.ok(cached(again).length >= 9, `${mode.name}: every step CACHED (${cached(again).length})`);

  const bundle = join(work, `bundle-${mode.name}`);
  await tool('umoci', ['unpack', '--image', `${layout}:v1`, bundle]);
  const rootfs = join(bundle, 'rootfs');
  const tree = await snapshotTree(rootfs);
  return { tree, xattrs: await xattrs(rootfs, tree), stderr: first.stderr };
}

const rootMode: Mode = { name: 'root', tsbuild: (args) => tsbuild(args) };
/** capsh drops CAP_SYS_ADMIN from the bounding set; bash `-c 'exec "$@"'` then runs node without it. */
const noSysAdminMode: Mode = {
  name: 'no-cap-sys-admin',
  tsbuild: (args) => tsbuildWithoutSysAdmin(args),
};

test('root, a user with subordinate ids, and root without CAP_SYS_ADMIN build the same image; rebuilds are CACHED; nothing left behind', async () => {
  const ctx = await makeContext({ 'ctx.txt': 'from the context\n', 'xattr.txt': 'x\n', 'Dockerfile': DOCKERFILE, 'Base.Dockerfile': 'FROM scratch\nCOPY rootfs/ /\n' });
  await tool('setfattr', ['-n', 'user.tsbuild.test', '-v', 'kept', join(ctx, 'xattr.txt')]);

  const rootRoot = join(work, 'root-store');
  const asRootResult = await buildIn(rootMode, rootRoot, ctx, await outDir());
  const capRoot = join(work, 'nosysadmin-store');
  const capMode = noSysAdminMode;
  // The mode really is missing the capability (otherwise it would test nothing).
  const caps = (await collect('capsh', ['--drop=cap_sys_admin', '--', '-c', 'grep CapEff /proc/self/status'])).stdout;
  assert.is((BigInt('0x' + /CapEff:\s*(\w+)/.exec(caps)![1]) >> 21n) & 1n, 0n, 'capsh dropped CAP_SYS_ADMIN');
  const capResult = await buildIn(capMode, capRoot, ctx, await outDir());
  // The identity map keeps real owners, so root's own store serves this mode too: all CACHED there.
  const shared = rawjsonEvents(ok(await capMode.tsbuild(['--root', rootRoot, 'build', '--progress', 'rawjson', '-t', 'rl:v1', ctx]), 'no CAP_SYS_ADMIN on root\'s store').stderr);
  assert.equal(started(shared), [], 'root\'s cache serves the build without CAP_SYS_ADMIN');
  assert.ok(cached(shared).length >= 9);

  await withBuildUser({ subordinateIds: true }, async (user) => {
    const userMode: Mode = { name: 'rootless', tsbuild: (args) => user.tsbuild(args) };
    const userResult = await buildIn(userMode, undefined, ctx, await outDir(user));
    assert.not.match(userResult.stderr, /warning: no subordinate ids/);

    // The default state root, private to the user, owned by it (0 in its namespace).
    const store = join(user.home, '.local/share/tsbuild');
    const st = await lstat(store);
    assert.equal([st.mode & 0o777, st.uid], [0o700, user.uid], 'state root created 0700, owned by the user');
    // Owner 1000 in the image is the user's subordinate id 1000 on the host (start + 999): the
    // build ran in a user namespace with the /etc/subuid range mapped, not as the user itself.
    const owners = new Set<number>();
    for (const layer of await readdir(join(store, 'layers'))) {
      if (layer.startsWith('.')) continue; // the store's own files (the unsynced-layers marker)
      for (const n of (await snapshotTree(join(store, 'layers', layer, 'diff'))).values()) owners.add(n.uid);
    }
    assert.ok(owners.has(user.subordinate!.start + 999), `subordinate owners in the store: ${[...owners].join(',')}`);
    assert.ok(owners.has(user.uid), 'root in the image is the user on the host');

    assert.equal(mountsUnder(store), [], 'no mounts left (they lived in the namespace that ended with tsbuild)');
    assert.equal(await user.processes(), [], 'no process of the user left running');
    assert.equal(await readdir(join(store, 'runc')).catch(() => []), [], 'no runc container left');
    assert.equal(await verifyStore(store), [], 'store consistent');

    // A crash of the machine (crash-safety.test.ts has the whole case): in the user's own store,
    // the layer dirs the dead boot made are removed and unpacked again from their blobs; the
    // rebuild stays CACHED and makes the same image.
    const marker = join(store, 'layers', '.unsynced');
    const [, since] = (await readFile(marker, 'utf8')).trim().split(' ');
    await writeFile(marker, `boot-that-crashed ${since}\n`);
    const afterCrash = rawjsonEvents(ok(await user.tsbuild(['build', '--progress', 'rawjson', '-t', 'rl:v1', ctx]), 'rootless: rebuild after a machine crash').stderr);
    assert.equal(started(afterCrash), [], 'rootless: the cache survives a crash of the machine');
    assert.ok(cached(afterCrash).length >= 9);
    assert.not.match(await readFile(marker, 'utf8'), 'boot-that-crashed', 'recovered, and marked for this boot again');
    assert.equal(await verifyStore(store), [], 'store consistent after the recovery');

    // Limits need a cgroup the user may write: the error names the mode (this host's cgroups are v1 and root's).
    const limited = await user.tsbuild(['build', '--memory', '64m', ctx]);
    assert.is(limited.code, 1, limited.stderr);
    assert.match(limited.stderr, /--memory needs the memory cgroup controller, which tsbuild cannot use in rootless mode/);
    // An owner beyond the subordinate range is an error that says so (not a raw EINVAL).
    const far = await makeContext({ 'f.txt': 'f\n', 'Dockerfile': 'FROM busybox\nCOPY --chown=70000:70000 f.txt /f.txt\n' });
    const beyond = await user.tsbuild(['build', far]);
    assert.is(beyond.code, 1, beyond.stderr);
    assert.match(beyond.stderr, /70000:70000 .*not mapped in tsbuild's user namespace/);
    assert.match(beyond.stderr, /\/etc\/subuid/);

    for (const [name, other] of [['root vs rootless', userResult], ['root vs no CAP_SYS_ADMIN', capResult]] as const) {
      // The root dir's own mode depends on how umoci made it.
      assert.equal(diffTrees(asRootResult.tree, other.tree, (p) => p === '.'), [], `${name}: same tree`);
      assert.equal([...other.xattrs], [...asRootResult.xattrs], `${name}: same xattrs`);
    }
  });
  for (const r of [rootRoot, capRoot]) {
    assert.equal(mountsUnder(r), []);
    assert.equal(await verifyStore(r), []);
  }

  // The image is what the Dockerfile says (so "equal" is not "equally empty").
  const t = asRootResult.tree;
  const node = (p: string) => t.get(p);
  assert.equal([node('own/f')?.uid, node('own/f')?.gid, node('own/f')?.mode], [1000, 1000, 0o4755]);
  assert.equal([node('keep/k2')?.uid, node('keep/k2')?.gid], [123, 456], 'a hardlink shares its target\'s owner');
  assert.equal([node('keep/k')?.uid, node('keep/k')?.mode], [123, 0o640]);
  assert.is(node('keep/fifo')?.type, 'fifo');
  assert.ok(!t.has('gone') && !t.has('bin/vi') && !t.has('d/sub'), 'whiteouts and the opaque dir applied');
  assert.is(node('d/new')?.type, 'file');
  assert.equal([node('h2/f')?.uid, node('h2/f')?.gid, node('h3/f')?.uid, node('h3/f')?.gid], [5, 6, 2000, 3000]);
  assert.equal([node('tmp/appdir/f')?.uid, node('ctx/ctx.txt')?.uid, node('ctx/ctx.txt')?.gid], [1000, 1000, 1000]);
  assert.is(node('link')?.link, '/keep/k');
  assert.equal(asRootResult.xattrs.get('ctx/xattr.txt user.tsbuild.test'), Buffer.from('kept').toString('hex'));
  assert.is(node('counted')?.size, 2, 'the cache mount was there');
});

test('a user without subordinate ids: one warning line, and the image builds with other owners as root', async () => {
  const ctx = await makeContext({ 'f.txt': 'f\n', 'Dockerfile': 'FROM busybox\nCOPY --chown=1000:1000 f.txt /f.txt\nRUN cat /f.txt > /g && ls -ln /f.txt\n', 'Base.Dockerfile': 'FROM scratch\nCOPY rootfs/ /\n' });
  await withBuildUser({ subordinateIds: false }, async (user) => {
    ok(await user.tsbuild(['build', '-f', join(ctx, 'Base.Dockerfile'), '-t', 'busybox', ctx]), 'base image');
    const out = await outDir(user);
    const r = ok(await user.tsbuild(['build', '--progress', 'plain', '-t', 'one:v1', '--output', `type=oci,dest=${join(out, 'img')},tar=false`, ctx]), 'build');
    const warnings = r.stderr.split('\n').filter((l) => /warning: no subordinate ids/.test(l));
    assert.is(warnings.length, 1, r.stderr);
    assert.match(warnings[0]!, /owned by root in the image/);
    assert.match(warnings[0]!, /\/etc\/subuid/);
    assert.match(warnings[0]!, /usermod --add-subuids/);
    const bundle = join(work, 'bundle-single');
    await tool('umoci', ['unpack', '--image', `${join(out, 'img')}:v1`, bundle]);
    const tree = await snapshotTree(join(bundle, 'rootfs'));
    assert.equal([tree.get('f.txt')?.uid, tree.get('f.txt')?.gid], [0, 0], 'COPY --chown to an unmapped id fell back to root');
    assert.is(tree.get('g')?.size, 2);
    assert.equal(await user.processes(), []);
  });
});

test('interrupted in rootless mode: SIGINT to tsbuild, or SIGTERM to its process group (as timeout and systemd send it), stops the RUN once; 130 passes through; nothing left', async () => {
  const ctx = await makeContext({ 'Dockerfile': 'FROM busybox\nRUN echo started && sleep 60\n', 'Base.Dockerfile': 'FROM scratch\nCOPY rootfs/ /\n' });
  await withBuildUser({ subordinateIds: true }, async (user) => {
    ok(await user.tsbuild(['build', '-f', join(ctx, 'Base.Dockerfile'), '-t', 'busybox', ctx]), 'base image');
    for (const [how, group, sig] of [['SIGINT to tsbuild', false, 'SIGINT'], ['SIGTERM to the group', true, 'SIGTERM']] as const) {
      const build = user.start(process.execPath, [CLI, 'build', '--no-cache', '--progress', 'plain', ctx], { ownProcessGroup: group });
      // Wait until the RUN's `sleep` runs in its container.
      let finished = false;
      void build.done.then(() => (finished = true));
      for (let i = 0; i < 400 && !finished && !(await sleepRunning(user)); i++) await new Promise((r) => setTimeout(r, 50));
      assert.not.ok(finished, `${how}: the build was still running`);
      process.kill(group ? -build.pid : build.pid, sig);
      const r = await build.done;
      assert.is(r.code, 130, `${how}: ${r.stderr}`);
      assert.match(r.stderr, /^interrupted$/m);
      assert.not.match(r.stderr, /interrupted again/, `${how}: one signal, even when it reaches both tsbuild processes`);
      assert.equal(await user.processes(), [], `${how}: the namespace child, runc and the container are gone`);
      assert.equal(mountsUnder(user.home), []);
      assert.equal(await readdir(join(user.home, '.local/share/tsbuild/tmp')), [], `${how}: temp files cleaned`);
    }
  });
});

test('a legacy store (trusted.overlay.* markers, made by an older tsbuild as root) is refused without CAP_SYS_ADMIN, with a clear error', async () => {
  const ctx = await makeContext({ 'Dockerfile': 'FROM busybox\nRUN true\n', 'Base.Dockerfile': 'FROM scratch\nCOPY rootfs/ /\n' });
  const root = join(work, 'legacy-store');
  ok(await tsbuild(['--root', root, 'build', '-f', join(ctx, 'Base.Dockerfile'), '-t', 'busybox', ctx]), 'base image as root');
  // What an older tsbuild left: layers, and no record of the xattr namespace (so: trusted.*).
  await rm(join(root, 'overlay-xattrs'));
  const r = await noSysAdminMode.tsbuild(['--root', root, 'build', ctx]);
  assert.is(r.code, 2, r.stderr);
  assert.match(r.stderr, /keeps overlay markers in trusted\.\* xattrs/);
  assert.match(r.stderr, /isolation rootless/);
  assert.equal(mountsUnder(root), []);
  // Real root still uses it.
  ok(await tsbuild(['--root', root, 'build', ctx]), 'the legacy store as real root');
});

/** Whether the user's RUN is running yet: the `sleep 60` of its container shows in /proc. */
async function sleepRunning(user: BuildUser): Promise<boolean> {
  for (const pid of await user.processes()) {
    if ((await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).startsWith('sleep\0')) return true;
  }
  return false;
}

test.run();

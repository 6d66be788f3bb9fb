import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useBuildRoot } from '../helpers/build-root.js';
import { withBuildUser } from '../helpers/build-user.js';
import { makeBusyboxRootfs } from '../helpers/busybox-rootfs.js';
import { CLI, tsbuild } from '../helpers/cli.js';
import { mountsUnder } from '../helpers/mounts.js';
import { runcContainers } from '../helpers/run-tool.js';
import { HAVE_TMUX, withTmux, type TmuxSession } from '../helpers/tmux.js';

/**
 * `build --on-error=shell` (buildx's `debug --on=error`): a failed RUN opens a shell on the
 * caller's terminal (a real one: tmux) in that RUN's container state; the build still fails.
 */
const test = suite('integration/on-error-shell');
const env = useBuildRoot(test, 'onerror');

const SECRET = 's3cr3t-value-91';

/** A RUN that leaves a file, sees ENV, a build arg, a workdir, a user, a cache, a tmpfs and a secret, then fails. */
const FAILING = (from: string) => `${from}
ENV GREETING=hello-from-env
ARG BARG=arg-value
RUN mkdir -p /work/dir && chown 1234:1234 /work/dir
WORKDIR /work/dir
USER 1234:1234
RUN --mount=type=secret,id=tok,target=/run/secrets/tok,uid=1234 --mount=type=secret,id=tok,env=TOKEN_ENV \\
    --mount=type=cache,target=/cache,uid=1234 --mount=type=tmpfs,target=/scratch \\
    echo written-before-failing > marker && echo from-cache > /cache/c && echo in-tmpfs > /scratch/t && echo "boom: $BARG" && exit 7
`;

/** What the shell is asked; each answer on a line of its own, tagged. */
const PROBE = [
  'echo M=$(cat marker)',
  'echo V=$GREETING/$BARG',
  'echo W=$(pwd)',
  'echo U=$(id -u):$(id -g)',
  'echo C=$(cat /cache/c)',
  // A tmpfs lives with its container: the shell's is a fresh one at the same place (as in BuildKit).
  "echo T=$(grep -c ' /scratch tmpfs ' /proc/mounts)$(ls -A /scratch)",
  // Without the secret mount, at most the empty mount point runc made for the RUN is left there.
  'echo S=$(cat /run/secrets/tok 2>/dev/null)',
  'echo E=${TOKEN_ENV:-none}',
  'echo DONE',
].join('; ');

/** Runs `build` in tmux, answers the shell with PROBE, exits it, and returns the final screen. */
async function probeShell(buildCmd: string): Promise<string> {
  return withTmux(`${buildCmd}; echo EXIT=$?; sleep 60`, { width: 200, height: 60 }, async (tty: TmuxSession) => {
    const opened = await tty.waitFor(/--on-error=shell: running/);
    assert.match(opened, /--on-error=shell: running "\/bin\/sh"/, opened);
    await tty.send(PROBE, 'Enter');
    await tty.waitFor(/^DONE\s*$/m);
    await tty.send('exit', 'Enter');
    return tty.waitFor(/^EXIT=\d+/m);
  });
}

test('the shell sees the failed RUN\'s writes, env, workdir, user and mounts, but not its secrets; the build then fails with the RUN\'s error', async () => {
  if (!HAVE_TMUX) return console.log('skipped: tmux is not installed');
  const ctx = await env.context(FAILING('FROM busybox'), { 'tok.txt': SECRET });
  const screen = await probeShell(`${process.execPath} ${CLI} --root ${env.root} build --on-error=shell --secret id=tok,src=${join(ctx, 'tok.txt')} ${ctx}`);
  assertProbed(screen);
  assert.not.match(screen, new RegExp(SECRET));
  assert.match(screen, /without its secrets and ssh sockets; --allow debug\.secrets adds them/);
  assert.match(screen, /did not complete successfully: exit code: 7/);
  assert.match(screen, /^EXIT=1\s*$/m, 'the build fails as without the shell');

  // Nothing of the failed step was recorded: the same build fails again the same way, not CACHED.
  const again = await tsbuild(['--root', env.root, 'build', '--progress=plain', '--secret', `id=tok,src=${join(ctx, 'tok.txt')}`, ctx]);
  assert.is(again.code, 1);
  assert.match(again.stderr, /boom: arg-value/);
  assert.match(again.stderr, /did not complete successfully: exit code: 7/);
});

test('--allow debug.secrets: the shell gets the RUN\'s secret file and env', async () => {
  if (!HAVE_TMUX) return console.log('skipped: tmux is not installed');
  const ctx = await env.context(FAILING('FROM busybox'), { 'tok.txt': SECRET });
  const screen = await probeShell(`${process.execPath} ${CLI} --root ${env.root} build --progress=plain --on-error=shell --allow debug.secrets --secret id=tok,src=${join(ctx, 'tok.txt')} ${ctx}`);
  assert.match(screen, new RegExp(`^S=${SECRET}\\s*$`, 'm'), screen);
  assert.match(screen, new RegExp(`^E=${SECRET}\\s*$`, 'm'));
  assert.match(screen, /^M=written-before-failing\s*$/m);
  assert.match(screen, /^EXIT=1\s*$/m);
});

test('--on-error=shell:CMD runs CMD with the stage\'s SHELL; a step that succeeds opens nothing', async () => {
  if (!HAVE_TMUX) return console.log('skipped: tmux is not installed');
  const ctx = await env.context('FROM busybox\nSHELL ["/bin/sh", "-c"]\nRUN echo ok > /ok\nENV X=42\nRUN echo partial > /p && false\n');
  const cmd = `${process.execPath} ${CLI} --root ${env.root} build --progress=plain --on-error='shell:echo CMDRAN x=$X $(cat /ok /p)' ${ctx}; echo EXIT=$?; sleep 60`;
  await withTmux(cmd, { width: 200, height: 50 }, async (tty) => {
    const screen = await tty.waitFor(/^EXIT=\d+/m);
    assert.match(screen, /^CMDRAN x=42 ok partial\s*$/m, screen);
    assert.match(screen, /--on-error=shell: "\/bin\/sh -c echo CMDRAN[^"]*" exited with 0/);
    assert.is((screen.match(/--on-error=shell: running/g) ?? []).length, 1, 'one shell, for the failed step only');
    assert.match(screen, /^EXIT=1\s*$/m);
  });
});

test('parallel failures: only the first opens a shell, the others are cancelled', async () => {
  if (!HAVE_TMUX) return console.log('skipped: tmux is not installed');
  const ctx = await env.context(
    'FROM busybox AS a\nRUN echo a-failed && exit 3\n' +
      'FROM busybox AS b\nRUN sleep 1 && echo b-$((6*7))-failed && exit 4\n' +
      'FROM busybox\nCOPY --from=a /etc/passwd /a\nCOPY --from=b /etc/passwd /b\n',
  );
  const cmd = `${process.execPath} ${CLI} --root ${env.root} build --progress=plain --on-error=shell:'echo SHELL-OPENED; sleep 3' ${ctx}; echo EXIT=$?; sleep 60`;
  await withTmux(cmd, { width: 200, height: 50 }, async (tty) => {
    const screen = await tty.waitFor(/^EXIT=\d+/m);
    assert.is((screen.match(/^SHELL-OPENED/gm) ?? []).length, 1, screen);
    assert.match(screen, /did not complete successfully: exit code: 3/);
    assert.not.match(screen, /b-42-failed/, `b was cancelled before it could fail\n${screen}`);
    assert.match(screen, /CANCELED|cancel/i);
    assert.match(screen, /^EXIT=1\s*$/m);
  });
});

/** Pids of the tsbuild processes (node running the CLI) whose command line holds `marker`. */
async function tsbuildPids(marker: string): Promise<number[]> {
  const out: number[] = [];
  for (const d of await readdir('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const argv = (await readFile(`/proc/${d}/cmdline`, 'utf8').catch(() => '')).split('\0');
    if (argv[0] === process.execPath && argv[1] === CLI && argv.includes(marker)) out.push(Number(d));
  }
  return out;
}

test('a hangup (the terminal window closed) ends the shell; its container and mounts go, and the build fails with the RUN\'s error', async () => {
  if (!HAVE_TMUX) return console.log('skipped: tmux is not installed');
  const ctx = await env.context('FROM busybox\nRUN --mount=type=cache,target=/c echo x > /x && exit 5\n');
  const cmd = `${process.execPath} ${CLI} --root ${env.root} build --progress=plain --on-error=shell ${ctx}; echo EXIT=$?; sleep 60`;
  await withTmux(cmd, { width: 200, height: 50 }, async (tty) => {
    await tty.waitFor(/--on-error=shell: running/);
    await tty.send('echo SHELL-UP', 'Enter');
    await tty.waitFor(/^SHELL-UP\s*$/m);
    const pids = await tsbuildPids(ctx);
    assert.is(pids.length, 1, 'one tsbuild process');
    process.kill(pids[0]!, 'SIGHUP');
    const screen = await tty.waitFor(/^EXIT=\d+/m);
    assert.match(screen, /--on-error=shell: the terminal hung up/, screen);
    assert.match(screen, /did not complete successfully: exit code: 5/);
    assert.match(screen, /^EXIT=1\s*$/m);
  });
});

test('without a terminal --on-error=shell is a usage error; bad values name the flag', async () => {
  const ctx = await env.context('FROM busybox\nRUN false\n');
  const r = await tsbuild(['--root', env.root, 'build', '--on-error=shell', ctx]);
  assert.is(r.code, 2, r.stderr);
  assert.match(r.stderr, /--on-error=shell needs a terminal \(standard input and output must be one\); CI has none/);
  const bad = await tsbuild(['--root', env.root, 'build', '--on-error=debug', ctx]);
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /--on-error "debug": expected fail, shell or shell:CMD/);
  const fail = await tsbuild(['--root', env.root, 'build', '--on-error=fail', ctx]);
  assert.is(fail.code, 1, 'fail is today\'s behaviour');
});

/** The failing Dockerfile on a `FROM scratch` + busybox rootfs, in a dir every user can read, for `fn`. */
async function withSharedContext(fn: (dir: string) => Promise<void>): Promise<void> {
  const shared = await mkdtemp(join(tmpdir(), 'tsbuild-onerror-shared-'));
  try {
    await chmod(shared, 0o755);
    await makeBusyboxRootfs(join(shared, 'rootfs'));
    await writeFile(join(shared, 'Dockerfile'), FAILING('FROM scratch\nCOPY rootfs/ /'));
    await writeFile(join(shared, 'tok.txt'), SECRET);
    await chmod(join(shared, 'tok.txt'), 0o644);
    await fn(shared);
  } finally {
    await rm(shared, { recursive: true, force: true });
  }
}

/** The probe's answers in a mode other than root's: the same state, no secret, the build failing. */
function assertProbed(screen: string): void {
  assert.match(screen, /^M=written-before-failing\s*$/m, screen);
  assert.match(screen, /^V=hello-from-env\/arg-value\s*$/m);
  assert.match(screen, /^W=\/work\/dir\s*$/m);
  assert.match(screen, /^U=1234:1234\s*$/m);
  assert.match(screen, /^C=from-cache\s*$/m);
  assert.match(screen, /^T=1\s*$/m);
  assert.match(screen, /^S=\s*$/m);
  assert.match(screen, /^E=none\s*$/m);
  assert.not.match(screen, new RegExp(SECRET));
  assert.match(screen, /^EXIT=1\s*$/m);
}

test('rootless, as a user with subordinate ids: the shell opens in the failed step\'s state', async () => {
  if (!HAVE_TMUX) return console.log('skipped: tmux is not installed');
  await withSharedContext(async (shared) => {
    await withBuildUser({ subordinateIds: true }, async (user) => {
      const root = join(user.home, 'tsbuild-root');
      const build = `setpriv --reuid ${user.uid} --regid ${user.gid} --init-groups --reset-env -- env HOME=${user.home} ${process.execPath} ${CLI} --root ${root} build --on-error=shell --secret id=tok,src=${join(shared, 'tok.txt')} ${shared}`;
      const screen = await probeShell(`cd ${user.home} && ${build}`);
      assertProbed(screen);
      assert.equal(mountsUnder(root), []);
      assert.equal(await runcContainers(join(root, 'runc')), []);
      assert.equal(await user.processes(), [], 'no process of the shell or build left');
    });
  });
});

test('root without CAP_SYS_ADMIN (rootless runc): the shell opens in the failed step\'s state', async () => {
  if (!HAVE_TMUX) return console.log('skipped: tmux is not installed');
  await withSharedContext(async (shared) => {
    const root = join(shared, 'nocap-root');
    const build = `capsh --drop=cap_sys_admin -- -c 'exec "$@"' sh ${process.execPath} ${CLI} --root ${root} build --on-error=shell --secret id=tok,src=${join(shared, 'tok.txt')} ${shared}`;
    assertProbed(await probeShell(build));
    assert.equal(mountsUnder(root), []);
    assert.equal(await runcContainers(join(root, 'runc')), []);
  });
});

test('isolation chroot refuses --on-error=shell before building, naming the mode', async () => {
  if (!HAVE_TMUX) return console.log('skipped: tmux is not installed');
  const ctx = await env.context('FROM busybox\nRUN false\n');
  const root = join(env.work, 'chroot-root');
  const cmd = `${process.execPath} ${CLI} --root ${root} --isolation chroot build --on-error=shell ${ctx}; echo EXIT=$?; sleep 60`;
  await withTmux(cmd, { width: 200, height: 40 }, async (tty) => {
    const s = await tty.waitFor(/^EXIT=\d+/m);
    assert.match(s, /--on-error=shell: isolation chroot cannot give the shell a terminal/, s);
    assert.match(s, /^EXIT=2\s*$/m);
  });
});

test.run();

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { useBuildRoot } from '../helpers/build-root.js';
import { collect, tsbuild, tsbuildOk } from '../helpers/cli.js';
import { freePort } from '../helpers/registry.js';
import { startHttpFileServer } from '../helpers/http-file-server.js';

/**
 * Issue 08, scope 2: where SOURCE_DATE_EPOCH comes from, as the newest BuildKit resolves it —
 * `--source-date-epoch` > `--build-arg` > `$SOURCE_DATE_EPOCH` > the Dockerfile's global ARG
 * default; `context`/`git` is the context's last commit time (a local work tree or a git URL),
 * read with git from a repository that may be hostile. Real builds, real git.
 */
const test = suite('integration: SOURCE_DATE_EPOCH sources');
const env = useBuildRoot(test, 'sde');

interface Config {
  readonly created: string;
  readonly history: { created?: string; created_by?: string }[];
}

const iso = (s: number) => new Date(s * 1000).toISOString();

/** Builds `context`, returns the image config and, with `file`, that file of the result. */
async function build(context: string, extra: string[] = [], opts: { env?: NodeJS.ProcessEnv; file?: string } = {}): Promise<{ config: Config; file?: string }> {
  const meta = join(env.work, 'meta.json');
  const out = join(env.work, `out-${Math.random().toString(36).slice(2)}`);
  try {
    const outArgs = opts.file ? ['--output', `type=local,dest=${out}`] : [];
    await tsbuildOk(['--root', env.root, 'build', '--no-cache', '--metadata-file', meta, ...outArgs, ...extra, context], { env: { SOURCE_DATE_EPOCH: '', ...opts.env } });
    const m = JSON.parse(await readFile(meta, 'utf8')) as Record<string, string>;
    const digest = m['containerimage.config.digest']!;
    const config = JSON.parse(await readFile(join(env.root, 'store/blobs/sha256', digest.slice('sha256:'.length)), 'utf8')) as Config;
    return { config, ...(opts.file ? { file: await readFile(join(out, opts.file), 'utf8') } : {}) };
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}

/** git with a fixed identity and commit time, and none of this machine's global config. */
function git(cwd: string, args: string[], time = 1700000000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const date = `@${time} +0000`;
  return collect('git', ['-c', 'user.email=t@example.com', '-c', 'user.name=t', '-c', 'init.defaultBranch=main', ...args], {
    cwd,
    env: { GIT_COMMITTER_DATE: date, GIT_AUTHOR_DATE: date, GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1' },
  });
}
async function gitOk(cwd: string, args: string[], time?: number): Promise<string> {
  const r = await git(cwd, args, time);
  if (r.code !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** A git repository with `files`, committed at `time`. */
async function repo(files: Record<string, string>, time = 1700000000): Promise<string> {
  const dir = await env.context(undefined, files);
  await gitOk(dir, ['init', '-q']);
  await gitOk(dir, ['add', '.']);
  await gitOk(dir, ['commit', '-q', '-m', 'one'], time);
  return dir;
}

test('a global ARG default sets the image and this build\'s history; RUN sees it through a stage ARG', async () => {
  const dir = await env.context('ARG SOURCE_DATE_EPOCH=1600000000\nFROM busybox\nARG SOURCE_DATE_EPOCH\nRUN echo "$SOURCE_DATE_EPOCH" > /f\n');
  const { config, file } = await build(dir, [], { file: 'f' });
  assert.is(config.created, iso(1600000000));
  const ours = config.history.filter((h) => /SOURCE_DATE_EPOCH/.test(h.created_by ?? ''));
  assert.is(ours.length, 2, JSON.stringify(config.history));
  assert.equal(ours.map((h) => h.created), [iso(1600000000), iso(1600000000)]);
  assert.is(file, '1600000000\n');
});

test('--source-date-epoch beats --build-arg beats $SOURCE_DATE_EPOCH beats the Dockerfile default', async () => {
  const dir = await env.context('ARG SOURCE_DATE_EPOCH=1000000000\nFROM busybox\nRUN true\n');
  const all = { env: { SOURCE_DATE_EPOCH: '1300000000' } };
  assert.is((await build(dir, ['--source-date-epoch', '1500000000', '--build-arg', 'SOURCE_DATE_EPOCH=1400000000'], all)).config.created, iso(1500000000));
  assert.is((await build(dir, ['--build-arg', 'SOURCE_DATE_EPOCH=1400000000'], all)).config.created, iso(1400000000));
  assert.is((await build(dir, [], all)).config.created, iso(1300000000));
  assert.is((await build(dir)).config.created, iso(1000000000));
});

test('given only through the environment, RUN after ARG SOURCE_DATE_EPOCH sees the number', async () => {
  const dir = await env.context('FROM busybox\nARG SOURCE_DATE_EPOCH\nRUN echo "epoch=$SOURCE_DATE_EPOCH" > /f\n');
  const { config, file } = await build(dir, [], { env: { SOURCE_DATE_EPOCH: '1700000000' }, file: 'f' });
  assert.is(file, 'epoch=1700000000\n');
  assert.is(config.created, iso(1700000000));
});

test('a bad Dockerfile default fails the build at its line; a bad flag is a usage error', async () => {
  for (const bad of ['not-a-number', '-1', '1.5', '253402300800']) {
    const dir = await env.context(`# reproducible\nARG SOURCE_DATE_EPOCH=${bad}\nFROM busybox\n`);
    const r = await tsbuild(['--root', env.root, 'build', dir], { env: { SOURCE_DATE_EPOCH: '' } });
    assert.is(r.code, 1, r.stderr);
    assert.match(r.stderr, /Dockerfile:2: .*invalid SOURCE_DATE_EPOCH: .* \(ARG SOURCE_DATE_EPOCH: expected a whole number of seconds/);
    assert.match(r.stderr, />>> +2 \| ARG SOURCE_DATE_EPOCH=/);
  }
  const dir = await env.context('FROM busybox\n');
  const r = await tsbuild(['--root', env.root, 'build', '--source-date-epoch', 'yesterday', dir]);
  assert.is(r.code, 2, r.stderr);
  assert.match(r.stderr, /--source-date-epoch: expected a whole number of seconds since 1970-01-01 \(at most 253402300799\) or "context" or "git", got "yesterday"/);
});

test('--source-date-epoch git: the last commit of the work tree the context is in (here a subdirectory of it)', async () => {
  const dir = await repo({ 'app/Dockerfile': 'FROM busybox\nARG SOURCE_DATE_EPOCH\nRUN echo $SOURCE_DATE_EPOCH > /f\n' });
  const { config, file } = await build(join(dir, 'app'), ['--source-date-epoch', 'git'], { file: 'f' });
  assert.is(config.created, '2023-11-14T22:13:20.000Z');
  assert.is(file, '1700000000\n');
  // The Dockerfile's `context` default, and a later commit moves the time.
  await writeFile(join(dir, 'app/Dockerfile'), 'ARG SOURCE_DATE_EPOCH=context\nFROM busybox\nRUN true\n');
  await gitOk(dir, ['commit', '-q', '-am', 'two'], 1700000100);
  assert.is((await build(join(dir, 'app'))).config.created, iso(1700000100));
});

test('context outside a git work tree is a usage error naming the directory', async () => {
  const dir = await env.context('FROM busybox\n');
  const r = await tsbuild(['--root', env.root, 'build', '--source-date-epoch', 'context', dir]);
  assert.is(r.code, 2, r.stderr);
  assert.match(r.stderr, `SOURCE_DATE_EPOCH=context: ${dir} is not in a git work tree`);
});

test('a hostile repository: its signature program, fsmonitor, pager and hooks never run; another owner\'s checkout still works', async () => {
  const marker = join(env.work, `pwned-${process.pid}`);
  const evil = join(env.work, 'evil.sh');
  await writeFile(evil, `#!/bin/sh\ntouch ${marker}\n`, { mode: 0o755 });
  const dir = await env.context(undefined, { Dockerfile: 'FROM busybox\nRUN true\n' });
  await gitOk(dir, ['init', '-q']);
  await gitOk(dir, ['add', '.']);
  // A signed commit: with log.showSignature git verifies it by running gpg.ssh.program.
  await collect('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(env.work, 'signing-key')]);
  await gitOk(dir, ['-c', 'gpg.format=ssh', '-c', `user.signingkey=${join(env.work, 'signing-key')}`, 'commit', '-q', '-S', '-m', 'signed']);
  const config = await readFile(join(dir, '.git/config'), 'utf8');
  await writeFile(
    join(dir, '.git/config'),
    `${config}[core]\n\tfsmonitor = ${evil}\n\tpager = ${evil}\n\thooksPath = hooks\n[log]\n\tshowSignature = true\n` +
      `[gpg]\n\tformat = ssh\n\tprogram = ${evil}\n[gpg "ssh"]\n\tprogram = ${evil}\n\tallowedSignersFile = /dev/null\n[pager]\n\tlog = ${evil}\n`,
  );
  await mkdir(join(dir, 'hooks'));
  await writeFile(join(dir, 'hooks/post-index-change'), `#!/bin/sh\ntouch ${marker}\n`, { mode: 0o755 });
  const ran = () => stat(marker).then(() => true, () => false);
  // The controls: this config does run commands for a git that trusts it.
  await git(dir, ['log', '-1', '--format=%ct']);
  assert.ok(await ran(), 'plain git log runs the repository\'s signature program');
  await rm(marker);
  await git(dir, ['status']);
  assert.ok(await ran(), 'plain git status runs the repository\'s fsmonitor');
  await rm(marker);
  try {
    assert.is((await build(dir, ['--source-date-epoch', 'git'])).config.created, iso(1700000000));
    assert.not.ok(await ran(), 'the repository ran a command');
    // Owned by someone else (as a user's checkout is for a root build): git's ownership check
    // would refuse it, so tsbuild waives it for this work tree only.
    await collect('chown', ['-R', '12345:12345', dir]);
    const refused = await git(dir, ['log', '-1', '--format=%ct']);
    assert.match(refused.stderr, /dubious ownership/);
    assert.is((await build(dir, ['--source-date-epoch', 'git'])).config.created, iso(1700000000));
    assert.not.ok(await ran(), 'the repository ran a command');
  } finally {
    await rm(marker, { force: true });
  }
});

test('a git URL context: context is the fetched commit\'s time, from the flag or the Dockerfile default', async () => {
  const base = join(env.work, 'git');
  const served = join(base, 'app.git');
  await mkdir(served, { recursive: true });
  await gitOk(served, ['init', '-q']);
  await writeFile(join(served, 'Dockerfile'), 'ARG SOURCE_DATE_EPOCH=context\nFROM busybox\nARG SOURCE_DATE_EPOCH\nRUN echo $SOURCE_DATE_EPOCH > /f\n');
  await gitOk(served, ['add', '.']);
  await gitOk(served, ['commit', '-q', '-m', 'one'], 1650000000);
  const port = await freePort();
  let daemon: ChildProcess | undefined;
  try {
    daemon = spawn('git', ['daemon', '--export-all', '--reuseaddr', `--base-path=${base}`, '--listen=127.0.0.1', `--port=${port}`, base], { stdio: 'ignore' });
    const url = `git://127.0.0.1:${port}/app.git`;
    for (let i = 0; i < 50 && (await collect('git', ['ls-remote', url])).code !== 0; i++) await new Promise((r) => setTimeout(r, 100));
    const fromDefault = await build(url, [], { file: 'f' });
    assert.is(fromDefault.config.created, iso(1650000000));
    assert.is(fromDefault.file, '1650000000\n');
    assert.is((await build(url, ['--build-arg', 'SOURCE_DATE_EPOCH=5'])).config.created, iso(5));
  } finally {
    daemon?.kill('SIGTERM');
  }
});

test('an http context: context is its Last-Modified; a source stage its ADD URL\'s; without one, or from standard input, an error', async () => {
  const http = await startHttpFileServer();
  try {
    const df = 'FROM busybox\nARG SOURCE_DATE_EPOCH\nRUN echo $SOURCE_DATE_EPOCH > /f\n';
    http.set('/dated/Dockerfile', { body: df, lastModified: new Date(1660000000 * 1000) });
    http.set('/undated/Dockerfile', { body: df });
    const dated = await build(`${http.base}/dated/Dockerfile`, ['--source-date-epoch', 'context'], { file: 'f' });
    assert.is(dated.config.created, iso(1660000000));
    assert.is(dated.file, '1660000000\n');
    const undated = await tsbuild(['--root', env.root, 'build', '--source-date-epoch', 'context', `${http.base}/undated/Dockerfile`]);
    assert.is(undated.code, 2, undated.stderr);
    assert.match(undated.stderr, `SOURCE_DATE_EPOCH=context: ${http.base}/undated/Dockerfile has no source time`);
    // A source stage (BuildKit's FROM scratch + one remote ADD): its URL's Last-Modified; the stage is never built.
    http.set('/src/v2.tar.gz', { body: 'not even a tarball', lastModified: new Date(1670000000 * 1000) });
    const staged = await env.context(`ARG BASE=${http.base}\nARG SOURCE_DATE_EPOCH=src\nFROM scratch AS src\nARG V=1\nADD \${BASE}/src/v\${V}.tar.gz /\nFROM busybox\nARG SOURCE_DATE_EPOCH\nRUN echo $SOURCE_DATE_EPOCH > /f\n`);
    const fromStage = await build(staged, ['--build-arg', 'V=2'], { file: 'f' });
    assert.is(fromStage.config.created, iso(1670000000));
    assert.is(fromStage.file, '1670000000\n');
    assert.is(http.requestsFor('/src/v2.tar.gz').length, 1, 'asked once (HEAD), the stage not built');
    const undatedStage = await tsbuild(['--root', env.root, 'build', '--build-arg', 'V=3', staged], { env: { SOURCE_DATE_EPOCH: '' } });
    assert.is(undatedStage.code, 1, undatedStage.stderr);
    assert.match(undatedStage.stderr, /Dockerfile:2: .*SOURCE_DATE_EPOCH: http:\/\/127\.0\.0\.1:\d+\/src\/v3\.tar\.gz: the server answered 404/);
  } finally {
    await http.close();
  }
  const stdin = await tsbuild(['--root', env.root, 'build', '--source-date-epoch', 'context', '-'], { input: 'FROM busybox\n' });
  assert.is(stdin.code, 2, stdin.stderr);
  assert.match(stdin.stderr, 'SOURCE_DATE_EPOCH=context: a context from standard input has no source time');
  // `-f -` reads only the Dockerfile from standard input: the context is still the work tree.
  const dir = await repo({ 'a.txt': 'a\n' }, 1690000000);
  const r = await tsbuildOk(['--root', env.root, 'build', '--source-date-epoch', 'git', '-f', '-', '--iidfile', join(env.work, 'iid'), dir], { input: 'FROM busybox\nCOPY a.txt /\n' });
  const id = (await readFile(join(env.work, 'iid'), 'utf8')).trim();
  const config = JSON.parse(await readFile(join(env.root, 'store/blobs/sha256', id.slice('sha256:'.length)), 'utf8')) as Config;
  assert.is(config.created, iso(1690000000), r.stderr);
});

test.run();

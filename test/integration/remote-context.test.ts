import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useBuildRoot } from '../helpers/build-root.js';
import { tsbuild, tsbuildOk } from '../helpers/cli.js';
import { startHttpFileServer, type HttpFileServer } from '../helpers/http-file-server.js';
import { freePort } from '../helpers/registry.js';
import { tool } from '../helpers/run-tool.js';

/**
 * Remote build contexts, as `docker build URL`: a git repository served by `git daemon` on
 * 127.0.0.1 (URL#REF:SUBDIR), and http tarballs and lone Dockerfiles from a local server.
 */
const test = suite('integration/remote-context');
const env = useBuildRoot(test, 'remotectx');
let daemon: ChildProcess | undefined;
let gitBase = '';
let http: HttpFileServer;
let commitV1 = '';

const git = (cwd: string, ...args: string[]) =>
  tool('git', ['-c', 'user.email=t@example.com', '-c', 'user.name=t', '-c', 'init.defaultBranch=main', ...args], { cwd });

test.before(async () => {
  const repo = join(env.work, 'git', 'app.git');
  await mkdir(join(repo, 'svc'), { recursive: true });
  await git(repo, 'init', '-q');
  await writeFile(join(repo, 'svc', 'Dockerfile'), 'FROM busybox\nCOPY . /ctx\nRUN cat /ctx/version.txt > /version && ls -a /ctx > /listing\n');
  await writeFile(join(repo, 'svc', 'version.txt'), 'v1\n');
  await writeFile(join(repo, 'Dockerfile'), 'FROM busybox\nCOPY svc/version.txt /top\n');
  await git(repo, 'add', '.');
  await git(repo, 'commit', '-q', '-m', 'v1');
  await git(repo, 'tag', 'v1');
  commitV1 = (await git(repo, 'rev-parse', 'HEAD')).trim();
  await writeFile(join(repo, 'svc', 'version.txt'), 'v2\n');
  await git(repo, 'commit', '-q', '-am', 'v2');
  const port = await freePort();
  gitBase = `git://127.0.0.1:${port}`;
  daemon = spawn('git', ['daemon', '--export-all', '--reuseaddr', `--base-path=${join(env.work, 'git')}`, '--listen=127.0.0.1', `--port=${port}`, join(env.work, 'git')], { stdio: 'ignore' });
  for (let i = 0; i < 50; i++) {
    if (await tool('git', ['ls-remote', `${gitBase}/app.git`]).then(() => true, () => false)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  http = await startHttpFileServer();
});
test.after(async () => {
  daemon?.kill('SIGTERM');
  await http?.close();
});

/** Builds `context` and returns the files named from the image's root filesystem. */
async function buildFiles(context: string, files: string[], extra: string[] = []): Promise<string[]> {
  const out = join(env.work, `out-${Math.random().toString(36).slice(2)}`);
  await tsbuildOk(['--root', env.root, 'build', '--output', `type=local,dest=${out}`, ...extra, context]);
  return Promise.all(files.map((f) => readFile(join(out, f), 'utf8')));
}

test('git context: the default branch, a tag, a commit, a subdirectory; .git is not in the context', async () => {
  assert.equal(await buildFiles(`${gitBase}/app.git`, ['top']), ['v2\n']);
  const [version, listing] = await buildFiles(`${gitBase}/app.git#v1:svc`, ['version', 'listing']);
  assert.is(version, 'v1\n');
  assert.not.match(listing!, /\.git/);
  assert.equal(await buildFiles(`${gitBase}/app.git#${commitV1}:svc`, ['version']), ['v1\n']);
  assert.equal(await buildFiles(`${gitBase}/app.git#main:svc`, ['version'], ['-f', 'Dockerfile']), ['v2\n']);
  assert.equal((await readdir(tmpdir())).filter((n) => n.startsWith('tsbuild-remote-')), [], 'the checkout is removed');
});

test('http context: a tarball becomes the context, a lone Dockerfile builds with an empty one', async () => {
  const src = join(env.work, 'tarsrc');
  await mkdir(src, { recursive: true });
  await writeFile(join(src, 'Dockerfile'), 'FROM busybox\nCOPY hello.txt /hello\n');
  await writeFile(join(src, 'hello.txt'), 'from a tarball\n');
  const tgz = join(env.work, 'ctx.tar.gz');
  await tool('tar', ['-czf', tgz, '-C', src, '.']);
  http.set('/ctx.tar.gz', { body: await readFile(tgz) });
  http.set('/Dockerfile', { body: 'FROM busybox\nRUN echo lone > /lone\n' });
  assert.equal(await buildFiles(`${http.base}/ctx.tar.gz`, ['hello']), ['from a tarball\n']);
  assert.equal(await buildFiles(`${http.base}/Dockerfile`, ['lone']), ['lone\n']);
});

test('a missing ref, subdirectory or URL is a usage error naming the context', async () => {
  for (const [context, re] of [
    [`${gitBase}/app.git#no-such-branch`, /git fetch failed/],
    [`${gitBase}/app.git#main:nope`, /nope is not a directory of the repository/],
    [`${http?.base}/missing.tar`, /answered 404/],
  ] as const) {
    const r = await tsbuild(['--root', env.root, 'build', context]);
    assert.is(r.code, 2, r.stderr);
    assert.match(r.stderr, re);
  }
});

test.run();

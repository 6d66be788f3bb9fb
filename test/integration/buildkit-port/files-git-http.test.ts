import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { useBuildRoot } from '../../helpers/build-root.js';
import { startHttpFileServer, type HttpFileServer } from '../../helpers/http-file-server.js';
import { exists, localOut, tarOf } from './files-helpers.js';

/** Ports of BuildKit's frontend/dockerfile/dockerfile_git_http_test.go: remote contexts on a local http server. */
const test = suite('buildkit-port: files / git and http contexts');
const env = useBuildRoot(test, 'bk-files-git-http');
let http: HttpFileServer;

test.before(async () => {
  http = await startHttpFileServer();
});
test.after(async () => {
  await http.close();
});

/** Serves every file below `dir` under `prefix`, as Go's http.FileServer does for git's dumb protocol. */
async function serveTree(dir: string, prefix: string): Promise<void> {
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) http.set(`${prefix}/${relative(dir, p)}`, { body: await readFile(p) });
    }
  };
  await walk(dir);
  // git asks for the smart protocol first; a plain file there (as http.FileServer, which ignores
  // the query, answers) makes it fall back to the dumb one.
  http.set(`${prefix}/info/refs?service=git-upload-pack`, { body: await readFile(join(dir, 'info/refs')) });
}

function git(dir: string, ...args: string[]): void {
  execFileSync('git', ['-c', 'user.email=test', '-c', 'user.name=test', '-c', 'init.defaultBranch=master', ...args], { cwd: dir, stdio: 'pipe' });
}

// testDockerfileFromGitSHA1 and testDockerfileFromGitSHA256 run this with each object format.
for (const format of ['sha1', 'sha256']) {
  const goName = format === 'sha1' ? 'testDockerfileFromGitSHA1' : 'testDockerfileFromGitSHA256';
  test(`${goName} (testDockerfileFromGit, ${format}): a git repository over (dumb) http as the context, #branch and the default branch`, async () => {
    const repo = join(env.work, `repo-${format}`);
    await mkdir(repo);
    let dockerfile = 'FROM busybox AS build\nRUN echo -n fromgit > foo\nFROM scratch\nCOPY --from=build foo bar\n';
    await writeFile(join(repo, 'Dockerfile'), dockerfile);
    git(repo, 'init', `--object-format=${format}`);
    git(repo, 'add', 'Dockerfile');
    git(repo, 'commit', '-m', 'initial');
    git(repo, 'branch', 'first');
    dockerfile += 'COPY --from=build foo bar2\n';
    await writeFile(join(repo, 'Dockerfile'), dockerfile);
    git(repo, 'add', 'Dockerfile');
    git(repo, 'commit', '-m', 'second');
    git(repo, 'update-server-info');
    await serveTree(join(repo, '.git'), `/${format}/.git`);

    let out = await localOut(env, `${http.base}/${format}/.git#first`);
    assert.is(await readFile(join(out, 'bar'), 'utf8'), 'fromgit');
    assert.not.ok(await exists(join(out, 'bar2')));
    out = await localOut(env, `${http.base}/${format}/.git`);
    assert.is(await readFile(join(out, 'bar'), 'utf8'), 'fromgit');
    assert.is(await readFile(join(out, 'bar2'), 'utf8'), 'fromgit');
  });
}

test('testDockerfileFromHTTP: an http tarball as the context, -f names its Dockerfile', async () => {
  const stage = join(env.work, 'http-stage');
  await mkdir(stage);
  await writeFile(join(stage, 'mydockerfile'), 'FROM scratch\nCOPY foo bar\n');
  await writeFile(join(stage, 'foo'), 'foo-contents');
  http.set('/myurl', { body: tarOf(stage, ['mydockerfile', 'foo'], join(env.work, 'ctx.tar')), etag: '"ctx"' });
  const out = await localOut(env, `${http.base}/myurl`, ['-f', 'mydockerfile']);
  assert.is(await readFile(join(out, 'bar'), 'utf8'), 'foo-contents');
});

test('testHTTPDockerfile: a plain Dockerfile at an http URL, whatever -f says', async () => {
  http.set('/df', { body: 'FROM busybox\nRUN echo -n "foo-contents" > /foo\nFROM scratch\nCOPY --from=0 /foo /foo\n', etag: '"df"' });
  const out = await localOut(env, `${http.base}/df`, ['-f', 'mydockerfile']);
  assert.is(await readFile(join(out, 'foo'), 'utf8'), 'foo-contents');
  assert.ok((await stat(join(out, 'foo'))).isFile());
});

test.run();

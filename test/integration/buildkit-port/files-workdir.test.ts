import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { lstat, readFile, readdir, readlink, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { useBuildRoot } from '../../helpers/build-root.js';
import { tsbuild, tsbuildOk } from '../../helpers/cli.js';
import { addUser, exists, localOut } from './files-helpers.js';

/**
 * Ports of BuildKit's dockerfile_workdir_test.go, dockerfile_dockerignore_test.go and
 * exclude_patterns_test.go, plus the file-op cases (unknown user names, a dangling
 * symlink as COPY destination).
 */
const test = suite('buildkit-port: files / WORKDIR, .dockerignore, --exclude');
const env = useBuildRoot(test, 'bk-files-workdir');

async function builds(dir: string, extra: readonly string[] = []): Promise<string> {
  const r = await tsbuild(['--root', env.root, 'build', '--progress', 'plain', ...extra, dir]);
  assert.is(r.code, 0, r.stderr.slice(-3000));
  return r.stderr;
}

interface Layout {
  readonly index: string;
  readonly config: { history: { created_by?: string; empty_layer?: boolean }[]; rootfs: { diff_ids: string[] } };
}

async function ociLayout(dir: string, extra: readonly string[] = []): Promise<Layout> {
  const dest = join(env.work, `layout-${Math.random().toString(36).slice(2)}`);
  await tsbuildOk(['--root', env.root, 'build', ...extra, '--output', `type=oci,dest=${dest},tar=false`, dir]);
  const index = await readFile(join(dest, 'index.json'), 'utf8');
  const blob = async (d: string): Promise<unknown> => JSON.parse(await readFile(join(dest, 'blobs/sha256', d.slice(7)), 'utf8'));
  const manifest = (await blob((JSON.parse(index) as { manifests: { digest: string }[] }).manifests[0]!.digest)) as { config: { digest: string } };
  return { index, config: (await blob(manifest.config.digest)) as Layout['config'] };
}

test('testWorkdirCreatesDir: WORKDIR makes the directory, on scratch too', async () => {
  const out = await localOut(env, await env.context('FROM scratch\nWORKDIR /foo\nWORKDIR /\n'));
  assert.ok((await lstat(join(out, 'foo'))).isDirectory());
});

test('testWorkdirSourceDateEpochReproducible: the same image twice with SOURCE_DATE_EPOCH', async () => {
  const dir = await env.context('FROM busybox\nWORKDIR /mydir\n');
  const epoch = String(Date.UTC(2023, 0, 10, 15, 34, 56) / 1000);
  const a = await ociLayout(dir, ['--build-arg', `SOURCE_DATE_EPOCH=${epoch}`]);
  const b = await ociLayout(dir, ['--no-cache', '--build-arg', `SOURCE_DATE_EPOCH=${epoch}`]);
  assert.is(b.index, a.index);
});

test('testWorkdirUser: WORKDIR under USER is owned by that user', async () => {
  await builds(await env.context(`FROM busybox\n${addUser('user', 1001)}\nUSER user\nWORKDIR /mydir\nRUN [ "$(stat -c "%U %G" /mydir)" == "user user" ]\n`));
});

test('testWorkdirCopyIgnoreRelative: COPY --from=stage with a relative source reads from the stage root', async () => {
  await builds(await env.context('FROM busybox AS base\nWORKDIR /foo\nCOPY Dockerfile /\nFROM busybox\nCOPY --from=base Dockerfile .\n'));
});

test('testWorkdirExists: an existing directory keeps its owner, and WORKDIR still adds its (empty) layer', async () => {
  const dir = await env.context(`FROM busybox\n${addUser('user', 1001)}\nRUN mkdir /mydir && chown user:user /mydir\nWORKDIR /mydir\nRUN [ "$(stat -c "%U %G" /mydir)" == "user user" ]\n`);
  await builds(dir);
  const { config } = await ociLayout(dir);
  const wd = config.history.find((h) => h.created_by === 'WORKDIR /mydir');
  assert.ok(wd, 'a WORKDIR history entry');
  assert.not.ok(wd!.empty_layer, 'WORKDIR is a layer, as BuildKit: its FileOp always commits one');
  assert.is(config.history.filter((h) => !h.empty_layer).length, config.rootfs.diff_ids.length);
});

test('issue: file ops with names the image does not know own files 0:0 (BuildKit readUser)', async () => {
  const dir = await env.context(`FROM busybox
USER docker
WORKDIR /test
USER root
COPY --chown=nosuchuser:nosuchgroup foo /a
COPY --chown=app:nosuchgroup foo /b
COPY --chown=nosuchuser:wheel foo /c
RUN [ "$(stat -c %u:%g /test)" = 0:0 ] && [ "$(stat -c %u:%g /a)" = 0:0 ] && [ "$(stat -c %u:%g /b)" = 1000:1000 ] && [ "$(stat -c %u:%g /c)" = 0:10 ]
`, { foo: 'x' });
  await builds(dir);
});

test('issue: COPY onto a symlink writes its target inside the rootfs, a dangling one too', async () => {
  const dir = await env.context('FROM busybox\nRUN ln -s /made/here /link && ln -s rel /rlink && echo old > /tgt && ln -s tgt /flink\nCOPY f /link\nCOPY f /rlink\nCOPY f /flink\n', { f: 'new\n' });
  const out = await localOut(env, dir);
  assert.is(await readlink(join(out, 'link')), '/made/here', 'the link stays');
  assert.is(await readFile(join(out, 'made/here'), 'utf8'), 'new\n');
  assert.is(await readFile(join(out, 'rel'), 'utf8'), 'new\n');
  assert.is(await readlink(join(out, 'flink')), 'tgt');
  assert.is(await readFile(join(out, 'tgt'), 'utf8'), 'new\n');
});

test('testDockerignore: patterns with an exception; Dockerfile and .dockerignore left out', async () => {
  const dir = await env.context('FROM scratch\nCOPY . .\n', {
    foo: 'foo-contents', bar: 'bar-contents', baz: 'baz-contents', bay: 'bay-contents',
    '.dockerignore': '\nba*\nDockerfile\n!bay\n.dockerignore\n',
  });
  const out = await localOut(env, dir);
  assert.is(await readFile(join(out, 'foo'), 'utf8'), 'foo-contents');
  for (const p of ['.dockerignore', 'Dockerfile', 'bar', 'baz']) assert.not.ok(await exists(join(out, p)), p);
  assert.is(await readFile(join(out, 'bay'), 'utf8'), 'bay-contents');
});

test('testDockerignoreInvalid: a lone "!" fails, promptly', async () => {
  const dir = await env.context('FROM scratch\nCOPY . .\n', { '.dockerignore': '!\n' });
  const r = await tsbuild(['--root', env.root, 'build', dir]);
  assert.is.not(r.code, 0, r.stderr);
  assert.match(r.stderr, /illegal exclusion pattern: "!"/);
});

test('testDockerignoreOverride: <Dockerfile>.dockerignore next to the Dockerfile wins', async () => {
  const dir = await env.context(undefined, {
    Dockerfile: 'FROM busybox\nCOPY . .\nRUN [ -f foo ] && [ ! -f bar ]\n',
    'Dockerfile.dockerignore': '\nbar\n',
    Dockerfile2: 'FROM busybox\nCOPY . .\nRUN [ ! -f foo ] && [ -f bar ]\n',
    'Dockerfile2.dockerignore': '\nfoo\n',
    foo: 'contents0',
    bar: 'contents0',
  });
  await builds(dir);
  await builds(dir, ['-f', join(dir, 'Dockerfile2')]);
});

test('testExcludedFilesOnCopy: --exclude on COPY and ADD, with directory and wildcard sources (plain directory context)', async () => {
  const dir = await env.context(`FROM scratch as builder1
COPY --exclude=*/*.png --exclude=*/*.jpeg . /1
FROM scratch as builder2
COPY --exclude=*/*.pdf --exclude=*/*.txt . /2
FROM scratch as builder3
ADD --exclude=*.mp3 dir3/ /3/
FROM scratch as builder4
COPY --exclude=*.mp3 --exclude=*.jpeg --exclude=*.png --exclude=*.pdf --exclude=*.txt dir* /4/
FROM scratch as builder5
ADD --exclude=*.mp* --exclude=*.jpeg --exclude=*.png --exclude=*.pdf dir* /5
FROM scratch as builder6
ADD --exclude=* dir* /6
FROM scratch
COPY --from=builder1 / /builder1
COPY --from=builder2 / /builder2
COPY --from=builder3 / /builder3
COPY --from=builder4 / /builder4
COPY --from=builder5 / /builder5
COPY --from=builder6 / /builder6
`);
  // The Go test's context has no Dockerfile in it (the frontend reads it from elsewhere).
  const ctx = await env.context(undefined, {
    'dir1/file-101.png': '2', 'dir1/file-102.txt': '3', 'dir1/file-103.jpeg': '4',
    'dir2/file-201.pdf': '6', 'dir2/file-202.jpeg': '7', 'dir2/file-203.png': '8',
    'dir3/file-301.mp3': '9', 'dir3/file-302.mpeg': '10', 'dir4/file-401.txt': '11',
  });
  await symlink('file-401.txt', join(ctx, 'dir4/file-402.txt'));
  await symlink('file-404.txt', join(ctx, 'dir4/file-403.txt'));
  const out = await localOut(env, ctx, ['-f', join(dir, 'Dockerfile')]);
  const x = null;
  const want: Record<string, string | null> = {
    'builder1/1/dir1/file-101.png': x, 'builder1/1/dir1/file-102.txt': '3', 'builder1/1/dir1/file-103.jpeg': x, 'builder1/1/dir2/file-201.pdf': '6',
    'builder1/1/dir2/file-202.jpeg': x, 'builder1/1/dir2/file-203.png': x, 'builder1/1/dir3/file-301.mp3': '9', 'builder1/1/dir3/file-302.mpeg': '10',
    'builder1/1/dir4/file-401.txt': '11', 'builder1/1/dir4/file-402.txt': '->file-401.txt', 'builder1/1/dir4/file-403.txt': '->file-404.txt',
    'builder2/2/dir1/file-101.png': '2', 'builder2/2/dir1/file-102.txt': x, 'builder2/2/dir1/file-103.jpeg': '4', 'builder2/2/dir2/file-201.pdf': x,
    'builder2/2/dir2/file-202.jpeg': '7', 'builder2/2/dir2/file-203.png': '8', 'builder2/2/dir3/file-301.mp3': '9', 'builder2/2/dir3/file-302.mpeg': '10',
    'builder2/2/dir4/file-401.txt': x, 'builder2/2/dir4/file-402.txt': x, 'builder2/2/dir4/file-403.txt': x,
    'builder3/3/file-301.mp3': x, 'builder3/3/file-302.mpeg': '10',
    'builder4/4/file-101.png': x, 'builder4/4/file-102.txt': x, 'builder4/4/file-103.jpeg': x, 'builder4/4/file-201.pdf': x, 'builder4/4/file-202.jpeg': x,
    'builder4/4/file-203.png': x, 'builder4/4/file-301.mp3': x, 'builder4/4/file-302.mpeg': '10', 'builder4/4/dir4/file-401.txt': x,
    'builder4/4/dir4/file-402.txt': x, 'builder4/4/dir4/file-403.txt': x,
    'builder5/5/file-101.png': x, 'builder5/5/file-102.txt': '3', 'builder5/5/file-103.jpeg': x, 'builder5/5/file-201.pdf': x, 'builder5/5/file-202.jpeg': x,
    'builder5/5/file-203.png': x, 'builder5/5/file-301.mp3': x, 'builder5/5/file-302.mpeg': x, 'builder5/5/file-401.txt': '11',
    'builder5/5/file-402.txt': '->file-401.txt', 'builder5/5/file-403.txt': '->file-404.txt',
  };
  for (const [p, c] of Object.entries(want)) {
    const abs = join(out, p);
    if (c === null) {
      assert.not.ok(await exists(abs), `${p} excluded`);
      continue;
    }
    const got = (await lstat(abs)).isSymbolicLink() ? `->${await readlink(abs)}` : await readFile(abs, 'utf8');
    assert.is(got, c, p);
  }
  assert.equal(await readdir(join(out, 'builder6/6')), [], 'everything excluded: an empty directory');
});

test.run();

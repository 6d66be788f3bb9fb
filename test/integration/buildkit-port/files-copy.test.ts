import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { lstat, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { useBuildRoot } from '../../helpers/build-root.js';
import { tsbuild } from '../../helpers/cli.js';
import { addUser, localOut } from './files-helpers.js';

/** Ports of BuildKit's frontend/dockerfile/dockerfile_copy_test.go. */
const test = suite('buildkit-port: files / COPY');
const env = useBuildRoot(test, 'bk-files-copy');

/** Builds and expects success: the Go tests that check with RUN inside the build. */
async function builds(dir: string, extra: readonly string[] = []): Promise<void> {
  const r = await tsbuild(['--root', env.root, 'build', '--progress', 'plain', ...extra, dir]);
  assert.is(r.code, 0, r.stderr.slice(-3000));
}

async function fails(dir: string, message: string, line: number): Promise<void> {
  const r = await tsbuild(['--root', env.root, 'build', dir]);
  assert.is(r.code, 1, r.stderr);
  assert.ok(r.stderr.includes(message), r.stderr);
  assert.match(r.stderr, new RegExp(`Dockerfile:${line}\\b`));
}

test('testDockerfileCopyFromArgs: --from=$FOO is refused', async () => {
  const dir = await env.context('FROM scratch\nCOPY --from=$FOO . .\n');
  await fails(dir, 'variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround', 2);
});

test('testEmptyDestDir, testPreserveDestDirSlash, testCopyLinkDotDestDir, testCopyLinkEmptyDestDir: destinations "", dir/, . and --link', async () => {
  const files = { testfile: 'contents0' };
  await builds(await env.context('FROM busybox\nENV empty=""\nCOPY testfile $empty\nRUN [ "$(cat testfile)" == "contents0" ]\n', files));
  await builds(await env.context('FROM busybox\nCOPY testfile /sample/\nRUN [ "$(cat /sample/testfile)" == "contents0" ]\n', files));
  await builds(await env.context('FROM busybox\nWORKDIR /var/www\nCOPY --link testfile .\nRUN [ "$(cat testfile)" == "contents0" ]\n', files));
  await builds(await env.context('FROM busybox\nWORKDIR /var/www\nENV empty=""\nCOPY --link testfile $empty\nRUN [ "$(cat testfile)" == "contents0" ]\n', files));
});

const owner = (p: string, e: string): string => `[ "$(stat -c "%u:%g" "${p}")" = "${e}" ] || { echo "incorrect ownership on ${p}: expected ${e}, got $(stat -c "%u:%g" "${p}")"; exit 1; }`;

test('testCopyChownExistingDir: existing directories keep their owner, new ones get the source owner or --chown', async () => {
  const base = `FROM busybox AS source
RUN touch /file && chown 100:200 /file && mkdir -p /dir/subdir && touch /dir/subdir/nestedfile && chown 100:200 /dir && chown 101:201 /dir/subdir && chown 102:202 /dir/subdir/nestedfile
FROM busybox AS test_base
RUN mkdir -p /existingdir/existingsubdir && touch /existingdir/existingfile && chown 500:600 /existingdir && chown 501:601 /existingdir/existingsubdir && chown 501:601 /existingdir/existingfile
`;
  const checks = (want: Record<string, string>): string => `RUN ${Object.entries(want).map(([p, e]) => owner(p, e)).join(' && ')}\n`;
  const existing = { '/existingdir': '500:600', '/existingdir/existingsubdir': '501:601', '/existingdir/existingfile': '501:601' };
  const df = `${base}FROM test_base AS copy_from
COPY --from=source /file .
COPY --from=source /dir /dir
COPY --from=source /dir/. /existingdir
${checks({ '/file': '100:200', '/dir': '0:0', '/dir/subdir': '101:201', '/dir/subdir/nestedfile': '102:202', ...existing, '/existingdir/subdir': '101:201', '/existingdir/subdir/nestedfile': '102:202' })}
FROM test_base AS copy_from_chowned
COPY --from=source --chown=300:400 /file .
COPY --from=source --chown=300:400 /dir /dir
COPY --from=source --chown=300:400 /dir/. /existingdir
${checks({ '/file': '300:400', '/dir': '300:400', '/dir/subdir': '300:400', '/dir/subdir/nestedfile': '300:400', ...existing, '/existingdir/subdir': '300:400', '/existingdir/subdir/nestedfile': '300:400' })}`;
  // The Go test's Dockerfile is Dockerfile.web reached through a Dockerfile symlink.
  const dir = await env.context(undefined, { 'Dockerfile.web': df });
  await symlink('Dockerfile.web', join(dir, 'Dockerfile'));
  await builds(dir, ['--target', 'copy_from']);
  await builds(dir, ['--target', 'copy_from_chowned']);
});

test('testCopyWildcardCache: a wildcard source is cached by what it matched', async () => {
  const dir = await env.context('FROM busybox AS base\nCOPY foo* files/\nRUN cat /dev/urandom | head -c 100 | sha256sum > unique\nCOPY bar files/\nFROM scratch\nCOPY --from=base unique /\n', {
    foo1: 'foo1-data',
    foo2: 'foo2-data',
    bar: 'bar-data',
  });
  const first = await readFile(join(await localOut(env, dir), 'unique'), 'utf8');
  await writeFile(join(dir, 'bar'), 'bar-data-mod');
  assert.is(await readFile(join(await localOut(env, dir), 'unique'), 'utf8'), first, 'a later COPY changing keeps the RUN cached');
  await writeFile(join(dir, 'foo2'), 'foo2-data-mod');
  assert.is.not(await readFile(join(await localOut(env, dir), 'unique'), 'utf8'), first, 'a file the wildcard matches changing reruns it');
});

test('testEmptyWildcard: a wildcard matching nothing next to a file', async () => {
  const out = await localOut(env, await env.context('FROM scratch\nCOPY foo nomatch* /\n', { foo: 'contents0' }));
  assert.is(await readFile(join(out, 'foo'), 'utf8'), 'contents0');
});

test('testCopyChownCreateDest: --chown=user:user on a created destination, names from ENV and ARG', async () => {
  const dir = await env.context(`FROM busybox
ARG group
ENV owner user01
${addUser('user', 1001)}
${addUser('user01', 1002)}
COPY --chown=user:user . /dest
COPY --chown=\${owner}:\${group} . /dest01
RUN [ "$(stat -c "%U %G" /dest)" == "user user" ]
RUN [ "$(stat -c "%U %G" /dest01)" == "user01 user" ]
`);
  await builds(dir, ['--build-arg', 'group=user']);
});

test('testCopyThroughSymlinkContext: a context symlink on the source path', async () => {
  const dir = await env.context('FROM scratch\nCOPY link/foo .\n', { 'sub/foo': 'contents' });
  await symlink('sub', join(dir, 'link'));
  assert.is(await readFile(join(await localOut(env, dir), 'foo'), 'utf8'), 'contents');
});

test('testCopyThroughSymlinkMultiStage: absolute and relative symlinks in another stage', async () => {
  const dir = await env.context('FROM busybox AS build\nRUN mkdir -p /out/sub && ln -s /out/sub /sub && ln -s out/sub /sub2 && echo -n "data" > /sub/foo\nFROM scratch\nCOPY --from=build /sub/foo .\nCOPY --from=build /sub2/foo bar\n');
  const out = await localOut(env, dir);
  assert.is(await readFile(join(out, 'foo'), 'utf8'), 'data');
  assert.is(await readFile(join(out, 'bar'), 'utf8'), 'data');
});

test('testCopySocket: a socket in the context becomes a regular file', async () => {
  const dir = await env.context('FROM scratch\nCOPY . /\n');
  execFileSync('python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', join(dir, 'socket.sock')]);
  const st = await lstat(join(await localOut(env, dir), 'socket.sock'));
  assert.ok(st.isFile());
});

test('testCopyFollowAllSymlinks: a symlink named as the source is followed, also below a directory', async () => {
  const dir = await env.context('FROM scratch\nCOPY foo /\nCOPY foo/sub bar\n', { bar: 'bar-contents' });
  await mkdir(join(dir, 'foo'));
  await symlink('../bar', join(dir, 'foo/sub'));
  await builds(dir);
});

test('testCopySymlinks: named symlinks are followed, wildcard-matched ones too (through chains)', async () => {
  const dir = await env.context('FROM scratch\nCOPY foo /\nCOPY sub/l* alllinks/\n', { bar: 'bar-contents', 'sub/lfile': 'lfile-contents', 'sub/subfile': 'subfile-contents', 'sub/baz': 'baz-contents' });
  await symlink('bar', join(dir, 'foo'));
  await symlink('subfile', join(dir, 'sub/l0'));
  await symlink('second', join(dir, 'sub/l1'));
  await symlink('baz', join(dir, 'sub/second'));
  const out = await localOut(env, dir);
  assert.is(await readFile(join(out, 'foo'), 'utf8'), 'bar-contents');
  assert.is(await readFile(join(out, 'alllinks/l0'), 'utf8'), 'subfile-contents');
  assert.is(await readFile(join(out, 'alllinks/lfile'), 'utf8'), 'lfile-contents');
  assert.is(await readFile(join(out, 'alllinks/l1'), 'utf8'), 'baz-contents');
});

test('testCopyChown: user name, uid:group name, and ENV/ARG expansion', async () => {
  const dir = await env.context(`FROM busybox AS base
ENV owner 1000
RUN mkdir -m 0777 /out
COPY --chown=daemon foo /
COPY --chown=1000:nobody bar /baz
ARG group
COPY --chown=\${owner}:\${group} foo /foobis
RUN stat -c "%U %G" /foo  > /out/fooowner
RUN stat -c "%u %G" /baz/sub  > /out/subowner
RUN stat -c "%u %G" /foobis  > /out/foobisowner
FROM scratch
COPY --from=base /out /
`, { foo: 'foo-contents', 'bar/sub': '' });
  const out = await localOut(env, dir, ['--build-arg', 'group=nobody']);
  assert.is(await readFile(join(out, 'fooowner'), 'utf8'), 'daemon daemon\n');
  assert.is(await readFile(join(out, 'subowner'), 'utf8'), '1000 nobody\n');
  assert.is(await readFile(join(out, 'foobisowner'), 'utf8'), '1000 nobody\n');
});

test('testCopyChmod: octal modes, created parents get the mode too', async () => {
  const dir = await env.context(`FROM busybox AS base
RUN mkdir -m 0777 /out
COPY --chmod=0644 foo /
COPY --chmod=777 bar /baz
COPY --chmod=0 foo /foobis
COPY --chmod=777 foo /parent/foo
COPY --chmod=770 foo /parent/sub/foo
ARG mode
COPY --chmod=\${mode} foo /footer
RUN stat -c "%04a" /foo  > /out/fooperm
RUN stat -c "%04a" /baz  > /out/barperm
RUN stat -c "%04a" /foobis  > /out/foobisperm
RUN stat -c "%04a" /parent  > /out/parentperm
RUN stat -c "%04a" /parent/sub  > /out/subparentperm
RUN stat -c "%04a" /footer  > /out/footerperm
FROM scratch
COPY --from=base /out /
`, { foo: 'foo-contents', bar: 'bar-contents' });
  const out = await localOut(env, dir, ['--build-arg', 'mode=755']);
  const want: Record<string, string> = { fooperm: '0644', barperm: '0777', foobisperm: '0000', parentperm: '0777', subparentperm: '0770', footerperm: '0755' };
  for (const [f, m] of Object.entries(want)) assert.is(await readFile(join(out, f), 'utf8'), `${m}\n`, f);
});

test('testCopyInvalidChmod: not octal, or above 07777', async () => {
  for (const mode of ['64a', '10000']) {
    await fails(await env.context(`FROM scratch\nCOPY --chmod=${mode} foo /\n`, { foo: 'foo-contents' }), `invalid chmod parameter: '${mode}'. it should be octal string and between 0 and 07777`, 2);
  }
});

test('testCopyOverrideFiles: copying the same paths again replaces them', async () => {
  const dir = await env.context('FROM scratch AS base\nCOPY sub sub\nCOPY sub sub\nCOPY files/foo.go dest/foo.go\nCOPY files/foo.go dest/foo.go\nCOPY files dest\n', {
    'sub/dir1/dir2/foo': 'foo-contents',
    'files/foo.go': 'foo.go-contents',
  });
  const out = await localOut(env, dir);
  assert.is(await readFile(join(out, 'sub/dir1/dir2/foo'), 'utf8'), 'foo-contents');
  assert.is(await readFile(join(out, 'dest/foo.go'), 'utf8'), 'foo.go-contents');
});

test('testCopyVarSubstitution: COPY $FOO', async () => {
  const out = await localOut(env, await env.context('FROM scratch AS base\nENV FOO bar\nCOPY $FOO baz\n', { bar: 'bar-contents' }));
  assert.is(await readFile(join(out, 'baz'), 'utf8'), 'bar-contents');
});

test('testCopyWildcards: wildcards in names and directories, dir/, dir/. and dir', async () => {
  const dir = await env.context(
    'FROM scratch AS base\nCOPY *.go /gofiles/\nCOPY f*.go foo2.go\nCOPY sub/* /subdest/\nCOPY sub/*/dir2/foo /subdest2/\nCOPY sub/*/dir2/foo /subdest3/bar\nCOPY . all/\nCOPY sub/dir1/ subdest4\nCOPY sub/dir1/. subdest5\nCOPY sub/dir1 subdest6\n',
    { 'foo.go': 'foo-contents', 'bar.go': 'bar-contents', 'sub/dir1/dir2/foo': 'foo-contents' },
  );
  const out = await localOut(env, dir);
  const want: Record<string, string> = {
    'gofiles/foo.go': 'foo-contents', 'gofiles/bar.go': 'bar-contents', 'foo2.go': 'foo-contents', 'subdest/dir2/foo': 'foo-contents',
    'subdest2/foo': 'foo-contents', 'subdest3/bar': 'foo-contents', 'all/foo.go': 'foo-contents', 'subdest4/dir2/foo': 'foo-contents',
    'subdest5/dir2/foo': 'foo-contents', 'subdest6/dir2/foo': 'foo-contents',
  };
  for (const [p, c] of Object.entries(want)) assert.is(await readFile(join(out, p), 'utf8'), c, p);
});

test('testCopyRelative: relative destinations against WORKDIR', async () => {
  const dir = await env.context(`FROM busybox
WORKDIR /test1
WORKDIR test2
RUN sh -c "[ "$PWD" = '/test1/test2' ]"
COPY foo ./
RUN sh -c "[ $(cat /test1/test2/foo) = 'hello' ]"
ADD foo ./bar/baz
RUN sh -c "[ $(cat /test1/test2/bar/baz) = 'hello' ]"
COPY foo ./bar/baz2
RUN sh -c "[ $(cat /test1/test2/bar/baz2) = 'hello' ]"
WORKDIR ..
COPY foo ./
RUN sh -c "[ $(cat /test1/foo) = 'hello' ]"
COPY foo /test3/
RUN sh -c "[ $(cat /test3/foo) = 'hello' ]"
WORKDIR /test4
COPY . .
RUN sh -c "[ $(cat /test4/foo) = 'hello' ]"
WORKDIR /test5/test6
COPY foo ../
RUN sh -c "[ $(cat /test5/foo) = 'hello' ]"
`, { foo: 'hello' });
  await builds(dir);
});

test('testCopyUnicodePath: non-ASCII, percent and plus in names are literal', async () => {
  const files = { 'test-äöü.txt': 'foo', 'test-%C3%A4%C3%B6%C3%BC.txt': 'bar', 'test+aou.txt': 'baz' };
  const dir = await env.context(`FROM scratch\n${Object.keys(files).map((f) => `COPY ${f} /`).join('\n')}\n`, files);
  const out = await localOut(env, dir);
  for (const [f, c] of Object.entries(files)) assert.is(await readFile(join(out, f), 'utf8'), c, f);
});

test('testChmodNonOctal: symbolic --chmod gives what chmod gives', async () => {
  const cases = [
    { src: 'file', dst: 'f1', mode: 'go-w', isDir: false },
    { src: 'file', dst: 'f2', mode: 'u=rw,g=r,o=r', isDir: false },
    { src: 'file', dst: 'f3', mode: 'a+X', isDir: false },
    { src: 'dir', dst: 'd1', mode: 'go-w', isDir: true },
    { src: 'dir', dst: 'd2', mode: 'u+rw,g+r,o-x,o+w', isDir: true },
    { src: 'dir', dst: 'd3', mode: 'a+X', isDir: true },
  ];
  let expected = '';
  let copies = '';
  let verify = '';
  for (const c of cases) {
    if (c.isDir) {
      expected += `RUN mkdir -p /input/dirs/${c.dst} && cp -a /input/${c.src} /input/dirs/${c.dst}/${c.dst}\n`;
      expected += `RUN cp -a /input/dirs/${c.dst}/. /expected/ && chmod ${c.mode} /expected/${c.dst}\n`;
      copies += `COPY --from=base --chmod=${c.mode} /input/dirs/${c.dst} /\n`;
    } else {
      expected += `RUN cp -a /input/${c.src} /expected/${c.dst} && chmod ${c.mode} /expected/${c.dst}\n`;
      copies += `COPY --from=base --chmod=${c.mode} /input/${c.src} /${c.dst}\n`;
    }
    verify += `RUN [ "$(stat -c %A /actual/${c.dst})" = "$(stat -c %A /expected/${c.dst})" ]\n`;
  }
  const dir = await env.context(`FROM busybox as base
RUN mkdir /input && touch /input/file && chmod 666 /input/file && mkdir /input/dir && chmod 124 /input/dir && mkdir /expected
${expected}
FROM scratch as result
${copies}
FROM base
COPY --from=result / /actual/
${verify}`);
  await builds(dir);
});

test('testLocalCustomSessionID: a local directory as a named context (--build-context base=DIR)', async () => {
  const dir = await env.context('FROM scratch AS base\nFROM scratch\nCOPY out /out1\nCOPY --from=base /another /out2\n', { out: 'contents1' });
  const other = await env.context(undefined, { another: 'contents2' });
  const out = await localOut(env, dir, ['--build-context', `base=${other}`]);
  assert.is(await readFile(join(out, 'out1'), 'utf8'), 'contents1');
  assert.is(await readFile(join(out, 'out2'), 'utf8'), 'contents2');
});

test.run();

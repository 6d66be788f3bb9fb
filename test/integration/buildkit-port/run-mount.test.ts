/** BuildKit's frontend/dockerfile/dockerfile_mount_test.go, ported: RUN --mount with real builds (runc, overlayfs). */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { useBuildRoot } from '../../helpers/build-root.js';
import { tsbuild, tsbuildOk, type CliResult } from '../../helpers/cli.js';

const test = suite('buildkit-port: dockerfile_mount_test.go');
const env = useBuildRoot(test, 'bk-run-mount');

let outs = 0;
/** Builds `dir` into a new local output dir; returns it. */
async function buildLocal(dir: string, extra: string[] = []): Promise<string> {
  const out = join(env.work, `out-${++outs}`);
  await tsbuildOk(['--root', env.root, 'build', '--progress', 'plain', '-o', `type=local,dest=${out}`, ...extra, dir]);
  return out;
}
function build(dir: string, extra: string[] = []): Promise<CliResult> {
  return tsbuild(['--root', env.root, 'build', '--progress', 'plain', ...extra, dir]);
}
async function buildOk(dir: string, extra: string[] = []): Promise<void> {
  await tsbuildOk(['--root', env.root, 'build', '--progress', 'plain', ...extra, dir]);
}
/** A failed build's message, with the Dockerfile line it names. */
async function buildFails(dir: string, extra: string[] = []): Promise<string> {
  const r = await build(dir, extra);
  assert.is(r.code, 1, `the build fails\n${r.stderr}`);
  return r.stderr;
}

test('testMountContext: the context is bound read-only at the target', async () => {
  const dir = await env.context('FROM busybox\nRUN --mount=target=/context [ "$(cat /context/testfile)" == "contents0" ]\n', { testfile: 'contents0' });
  await buildOk(dir);
});

test('testMountTmpfs: a tmpfs mount leaves nothing in the layer', async () => {
  await buildOk(await env.context('FROM busybox\nRUN --mount=target=/mytmp,type=tmpfs touch /mytmp/foo\nRUN [ ! -f /mytmp/foo ]\n'));
});

test('testMountInvalid: an unknown flag, key or type, each with its did-you-mean', async () => {
  let err = await buildFails(await env.context('FROM scratch\nRUN --mont=target=/mytmp,type=tmpfs /bin/true\n'));
  assert.match(err, 'unknown flag: --mont');
  assert.match(err, 'did you mean mount?');
  err = await buildFails(await env.context('FROM scratch\nRUN --mount=typ=tmpfs /bin/true\n'));
  assert.match(err, "unexpected key 'typ'");
  assert.match(err, 'did you mean type?');
  err = await buildFails(await env.context('FROM scratch\nRUN --mount=type=tmp /bin/true\n'));
  assert.match(err, 'unsupported mount type "tmp"');
  assert.match(err, 'did you mean tmpfs?');
  // The example: a transposed key.
  err = await buildFails(await env.context('FROM busybox\nRUN --mount=type=cache,targte=/c true\n'));
  assert.match(err, "unexpected key 'targte' in 'targte=/c' (did you mean target?)");
  assert.match(err, /Dockerfile:2/);
});

test('testMountRWCache: a rw bind from a stage keeps the RUN cached when only an unrelated input changed content', async () => {
  const dockerfile = `from busybox AS build
copy cachebust /
run mkdir out && echo foo > out/foo
from busybox as second
RUN --mount=from=build,src=out,target=/out,rw touch /out/bar && cat /dev/urandom | head -c 100 | sha256sum > /unique
from scratch
COPY --from=second /unique /unique
`;
  const first = await buildLocal(await env.context(dockerfile, { cachebust: '0' }));
  const again = await buildLocal(await env.context(dockerfile, { cachebust: '1' }));
  assert.is(await readFile(join(again, 'unique'), 'utf8'), await readFile(join(first, 'unique'), 'utf8'));
});

test('testCacheMountUser: uid, gid and mode of a cache mount', async () => {
  await buildOk(await env.context('FROM busybox\nRUN --mount=type=cache,target=/mycache,uid=1001,gid=1002,mode=0751 [ "$(stat -c "%u %g %f" /mycache)" == "1001 1002 41e9" ]\n'));
});

test('testCacheMountDefaultID: the id defaults to the target', async () => {
  await buildOk(
    await env.context(
      'FROM busybox\nRUN --mount=type=cache,target=/mycache touch /mycache/foo\nRUN --mount=type=cache,target=/mycache2 [ ! -f /mycache2/foo ]\nRUN --mount=type=cache,target=/mycache [ -f /mycache/foo ]\n',
    ),
  );
});

test('testMountEnvVar, testMountArg, testMountEnvAcrossStages, testMountMetaArg: mount values are expanded', async () => {
  await buildOk(await env.context('FROM busybox\nENV SOME_PATH=/mycache-env\nRUN --mount=type=cache,target=/mycache-env touch /mycache-env/foo\nRUN --mount=type=cache,target=$SOME_PATH [ -f $SOME_PATH/foo ]\n'));
  await buildOk(await env.context('FROM busybox\nARG MNT_TYPE=cache\nRUN --mount=type=$MNT_TYPE,target=/mycache-arg touch /mycache-arg/foo\nRUN --mount=type=cache,target=/mycache-arg [ -f /mycache-arg/foo ]\n'));
  await buildOk(
    await env.context(
      'FROM busybox as stage1\nENV MNT_ID=mycache-across\nENV MNT_TYPE2=cache\nRUN --mount=type=cache,id=mycache-across,target=/abcabc touch /abcabc/foo\nRUN --mount=type=$MNT_TYPE2,id=$MNT_ID,target=/cbacba [ -f /cbacba/foo ]\nFROM stage1\nRUN --mount=type=$MNT_TYPE2,id=$MNT_ID,target=/whatever [ -f /whatever/foo ]\n',
    ),
  );
  await buildOk(
    await env.context('ARG META_PATH=/tmp/meta\nFROM busybox\nARG META_PATH\nRUN --mount=type=cache,id=mycache-meta,target=/tmp/meta touch /tmp/meta/foo\nRUN --mount=type=cache,id=mycache-meta,target=$META_PATH [ -f /tmp/meta/foo ]\n'),
  );
});

test('testMountFromError: from=$VAR is refused, at its line', async () => {
  const err = await buildFails(await env.context('FROM busybox as test\nRUN touch /tmp/test\nFROM busybox\nENV ttt=test\nRUN --mount=from=$ttt,type=cache,target=/tmp ls\n'));
  assert.match(err, "'from' doesn't support variable expansion, define alias stage instead");
  assert.match(err, /Dockerfile:5/);
});

test('testMountTmpfsSize: size= reaches the tmpfs', async () => {
  const out = await buildLocal(await env.context('FROM busybox AS base\nRUN --mount=type=tmpfs,target=/dev/shm,size=128m mount | grep /dev/shm > /tmpfssize\nFROM scratch\nCOPY --from=base /tmpfssize /\n'));
  assert.match(await readFile(join(out, 'tmpfssize'), 'utf8'), 'size=131072k');
});

test('testMountDuplicate: two binds of the context see its new content on each build', async () => {
  const dockerfile = 'FROM busybox AS base\nRUN --mount=source=.,target=/tmp/test \\\n  --mount=source=b.txt,target=/tmp/b.txt \\\n  cat /tmp/test/a.txt /tmp/b.txt > /combined.txt\nFROM scratch\nCOPY --from=base /combined.txt /\n';
  const dir = await env.context(dockerfile, { 'a.txt': 'foo\n', 'b.txt': 'bar\n' });
  assert.is(await readFile(join(await buildLocal(dir), 'combined.txt'), 'utf8'), 'foo\nbar\n');
  await writeFile(join(dir, 'a.txt'), 'updated\n');
  assert.is(await readFile(join(await buildLocal(dir), 'combined.txt'), 'utf8'), 'updated\nbar\n');
});

test('testCacheMountParallel: two stages with nested cache mounts side by side, --no-cache, repeated', async () => {
  const dir = await env.context(
    'FROM busybox AS b1\nRUN --mount=type=cache,target=/foo/bar --mount=type=cache,target=/foo/bar/baz echo 1\nFROM busybox AS b2\nRUN --mount=type=cache,target=/foo/bar --mount=type=cache,target=/foo/bar/baz echo 2\nFROM scratch\nCOPY --from=b1 /etc/passwd p1\nCOPY --from=b2 /etc/passwd p2\n',
  );
  // BuildKit repeats it 20 times to catch a runc race; 3 keep this suite fast.
  for (let i = 0; i < 3; i++) await buildOk(dir, ['--no-cache']);
});

test('testCacheMountSourceEscape: a cache source= that is a link out of the cache fails the build', async () => {
  const dockerfile = `FROM busybox AS init
RUN --mount=type=cache,id=sourceescape,target=/cache mkdir -p /cache/sel && echo benign > /cache/sel/benign.txt
FROM init AS link
RUN --mount=type=cache,id=sourceescape,target=/cache rm -rf /cache/sel && ln -s /etc /cache/sel
FROM link AS victim
RUN --mount=type=cache,id=sourceescape,source=sel,target=/victim cat /victim/hostname
FROM scratch
COPY --from=victim /etc/hostname /hostname
`;
  const err = await buildFails(await env.context(dockerfile), ['--no-cache']);
  assert.match(err, /Dockerfile:6/);
});

test('RUN --mount without a target mounts at the WORKDIR (moby/moby, docker/compose Dockerfiles); refused at /', async () => {
  const dir = await env.context(
    `FROM busybox AS binary
RUN mkdir /out && echo bin > /out/tool
FROM busybox
WORKDIR /go/src
RUN --mount=from=binary,source=/out [ "$(cat /go/src/tool)" = bin ]
RUN --mount=type=cache touch /go/src/cached && mkdir -p /seen && cp /go/src/cached /seen/
RUN --mount=type=cache [ -f cached ] && [ ! -e /go/src/cached.x ]
RUN --mount=type=tmpfs touch /go/src/t && [ -f /go/src/t ]
RUN --mount=type=bind,source=ctx.txt,target=ctx.txt [ "$(cat /go/src/ctx.txt)" = ctx ]
RUN [ ! -e /go/src/tool ] && [ ! -e /go/src/cached ] && [ ! -e /go/src/t ]
`,
    { 'ctx.txt': 'ctx' },
  );
  await buildOk(dir);
  const err = await buildFails(await env.context('FROM busybox\nRUN --mount=type=cache true\n'));
  assert.match(err, 'invalid mount target "/"');
  assert.match(err, /Dockerfile:2/);
});

test('RUN --mount: BuildKit refuses mode/uid/gid on a bind, size on a cache, a secret without id, source or target', async () => {
  for (const [mount, message] of [
    ['type=bind,target=/x,mode=0700', 'mode not allowed for "bind" type mounts'],
    ['type=cache,target=/x,size=1m', "unexpected key 'size' for mount type 'cache'"],
    ['type=secret,env=TOKEN', 'invalid secret mount. one of source, target required'],
    ['type=cache,target=/x,sharing=privat', 'unsupported sharing value "privat" (did you mean private?)'],
  ] as const) {
    const err = await buildFails(await env.context(`FROM busybox\nRUN --mount=${mount} true\n`));
    assert.match(err, message);
    assert.match(err, /Dockerfile:2/);
  }
});

test.run();

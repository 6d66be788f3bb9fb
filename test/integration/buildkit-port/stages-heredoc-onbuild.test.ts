import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { useBuildRoot } from '../../helpers/build-root.js';
import { tool } from '../../helpers/run-tool.js';
import { builder, read } from './stages-helpers.js';

/**
 * BuildKit frontend/dockerfile/dockerfile_heredoc_test.go and dockerfile_onbuild_test.go, ported.
 * Their base images go through a registry; here they are tagged in the local store (the
 * ONBUILD triggers travel in the image config either way).
 */
const test = suite('buildkit-port: stages / heredoc, onbuild');
const env = useBuildRoot(test, 'bk-stages-heredoc');
const b = builder(env);

async function expectFiles(out: string, files: Record<string, string>): Promise<void> {
  for (const [name, content] of Object.entries(files)) assert.is(await read(out, name), content, name);
}

test('testCopyHeredoc: COPY of one and two heredocs, --chmod and --chown', async () => {
  // The local busybox has no adduser applet: the user is added as `adduser -D user` would.
  const dir = await env.context(`FROM busybox AS build
RUN echo 'user:x:1001:1001::/home/user:/bin/sh' >> /etc/passwd && echo 'user:x:1001:' >> /etc/group
WORKDIR /dest
COPY <<EOF single
single file
EOF
COPY <<EOF <<EOF2 double/
first file
EOF
second file
EOF2
RUN mkdir -p /permfiles
COPY --chmod=777 <<EOF /permfiles/all
dummy content
EOF
COPY --chmod=0644 <<EOF /permfiles/rw
dummy content
EOF
COPY --chown=user:user <<EOF /permfiles/owned
dummy content
EOF
RUN stat -c "%04a" /permfiles/all >> perms && \\
\tstat -c "%04a" /permfiles/rw >> perms && \\
\tstat -c "%U:%G" /permfiles/owned >> perms
FROM scratch
COPY --from=build /dest /
`);
  await expectFiles((await b.out(dir)).out, { single: 'single file\n', 'double/EOF': 'first file\n', 'double/EOF2': 'second file\n', perms: '0777\n0644\nuser:user\n' });
});

test('testCopyHeredocSpecialSymbols: quotes, backslashes and $ in processed and raw heredocs', async () => {
  const dir = await env.context(`FROM scratch
COPY <<EOF quotefile
"quotes in file"
EOF
COPY <<EOF slashfile1
\\
EOF
COPY <<EOF slashfile2
\\\\
EOF
COPY <<EOF slashfile3
\\$
EOF
COPY <<"EOF" rawslashfile1
\\
EOF
COPY <<"EOF" rawslashfile2
\\\\
EOF
COPY <<"EOF" rawslashfile3
\\$
EOF
`);
  await expectFiles((await b.out(dir)).out, {
    quotefile: '"quotes in file"\n', slashfile1: '\n', slashfile2: '\\\n', slashfile3: '$\n',
    rawslashfile1: '\\\n', rawslashfile2: '\\\\\n', rawslashfile3: '\\$\n',
  });
});

test('testRunBasicHeredoc: a RUN heredoc body runs in the shell', async () => {
  const dir = await env.context('FROM busybox AS build\nRUN <<EOF\necho "i am" >> /dest\nwhoami >> /dest\nEOF\nFROM scratch\nCOPY --from=build /dest /dest\n');
  assert.is(await read((await b.out(dir)).out, 'dest'), 'i am\nroot\n');
});

test('testRunFakeHeredoc: SHELL decides what runs the heredoc', async () => {
  const dir = await env.context('FROM busybox AS build\nSHELL ["/bin/awk"]\nRUN <<EOF\nBEGIN {\n\tprint "foo" > "/dest"\n}\nEOF\nFROM scratch\nCOPY --from=build /dest /dest\n');
  assert.is(await read((await b.out(dir)).out, 'dest'), 'foo\n');
});

test('testRunShebangHeredoc: a shebang picks the interpreter; <<- strips tabs first', async () => {
  const dir = await env.context(`FROM busybox AS build
WORKDIR /dest
RUN <<EOF
#!/bin/awk -f
BEGIN {
\tprint "hello" >> "./out1"
\tprint "world" >> "./out1"
}
EOF
RUN <<-EOF
\t#!/bin/awk -f
\tBEGIN {
\t\tprint "hello" >> "./out2"
\t\tprint "world" >> "./out2"
\t}
EOF
FROM scratch
COPY --from=build /dest /
`);
  await expectFiles((await b.out(dir)).out, { out1: 'hello\nworld\n', out2: 'hello\nworld\n' });
});

test('testRunComplexHeredoc: heredocs piped, continued, and on descriptors 3 and 4', async () => {
  const dir = await env.context(`FROM busybox AS build
WORKDIR /dest
RUN cat <<EOF1 | tr '[:upper:]' '[:lower:]' > ./out1; \\
\tcat <<EOF2 | tr '[:lower:]' '[:upper:]' > ./out2
hello WORLD
EOF1
HELLO world
EOF2
RUN <<EOF 3<<IN1 4<<IN2 awk -f -
BEGIN {
\twhile ((getline line < "/proc/self/fd/3") > 0)
\t\tprint tolower(line) > "./fd3"
\twhile ((getline line < "/proc/self/fd/4") > 0)
\t\tprint toupper(line) > "./fd4"
}
EOF
hello WORLD
IN1
HELLO world
IN2
FROM scratch
COPY --from=build /dest /
`);
  await expectFiles((await b.out(dir)).out, { out1: 'hello world\n', out2: 'HELLO WORLD\n', fd3: 'hello world\n', fd4: 'HELLO WORLD\n' });
});

test('testHeredocIndent: <<EOF keeps leading tabs, <<-EOF strips them (COPY and RUN)', async () => {
  const dir = await env.context(`FROM busybox AS build
COPY <<EOF /dest/foo-copy
\tfoo
EOF
COPY <<-EOF /dest/bar-copy
\tbar
EOF
RUN <<EOF
echo "
\tfoo" > /dest/foo-run
EOF
RUN <<-EOF
echo "
\tbar" > /dest/bar-run
EOF
RUN <<EOF
#!/bin/sh
echo "
\tfoo" > /dest/foo2-run
EOF
RUN <<-EOF
#!/bin/sh
echo "
\tbar" > /dest/bar2-run
EOF
RUN <<EOF sh > /dest/foo3-run
echo "
\tfoo"
EOF
RUN <<-EOF sh > /dest/bar3-run
echo "
\tbar"
EOF
FROM scratch
COPY --from=build /dest /
`);
  await expectFiles((await b.out(dir)).out, {
    'foo-copy': '\tfoo\n', 'foo-run': '\n\tfoo\n', 'foo2-run': '\n\tfoo\n', 'foo3-run': '\n\tfoo\n',
    'bar-copy': 'bar\n', 'bar-run': '\nbar\n', 'bar2-run': '\nbar\n', 'bar3-run': '\nbar\n',
  });
});

test('testHeredocVarSubstitution: unquoted heredocs expand ARGs, quoted ones stay literal; RUN shell variables shadow', async () => {
  const copies = [['c1', 'EOF', '${name}'], ['c2', "'EOF'", '${name}'], ['c3', '"EOF"', '${name}'], ['q1', 'EOF', "'${name}'"], ['q2', 'EOF', '"${name}"'],
    ['qsingle1', "'EOF'", "'${name}'"], ['qsingle2', "'EOF'", '"${name}"'], ['qdouble1', '"EOF"', "'${name}'"], ['qdouble2', '"EOF"', '"${name}"']];
  const dir = await env.context(`FROM busybox as build
ARG name=world
${copies.map(([f, d, v]) => `COPY <<${d} /dest/${f}\nHello ${v}!\nEOF\n`).join('')}RUN <<EOF
greeting="Hello"
echo "\${greeting} \${name}!" > /dest/r1
EOF
RUN <<EOF
name="new world"
echo "Hello \${name}!" > /dest/r2
EOF
FROM scratch
COPY --from=build /dest /
`);
  await expectFiles((await b.out(dir)).out, {
    c1: 'Hello world!\n', c2: 'Hello ${name}!\n', c3: 'Hello ${name}!\n', q1: "Hello 'world'!\n", q2: 'Hello "world"!\n',
    qsingle1: "Hello '${name}'!\n", qsingle2: 'Hello "${name}"!\n', qdouble1: "Hello '${name}'!\n", qdouble2: 'Hello "${name}"!\n',
    r1: 'Hello world!\n', r2: 'Hello new world!\n',
  });
});

test('testOnBuildHeredoc: ONBUILD RUN <<EOF is stored whole and runs in the child', async () => {
  await b.ok(await env.context('FROM busybox\nONBUILD RUN <<EOF\necho "hello world" >> /dest\nEOF\n'), ['-t', 'onbuildheredoc:base']);
  assert.equal((await b.config('onbuildheredoc:base')).config.OnBuild, ['RUN <<EOF\necho "hello world" >> /dest\nEOF']);
  const dir = await env.context('FROM onbuildheredoc:base AS base\nFROM scratch\nCOPY --from=base /dest /dest\n');
  assert.is(await read((await b.out(dir)).out, 'dest'), 'hello world\n');
});

test('testOnBuildCleared: triggers run once, in the child, and are not passed to the grandchild', async () => {
  await b.ok(await env.context('FROM busybox\nONBUILD RUN mkdir -p /out && echo -n 11 >> /out/foo\n'), ['-t', 'onbuild:base']);
  // ONBUILD is config only: no history entry (BuildKit dispatchOnbuild commits none).
  assert.not.ok((await b.config('onbuild:base')).history!.some((h) => h.created_by?.startsWith('ONBUILD')));
  await b.ok(await env.context('FROM onbuild:base\n'), ['-t', 'onbuild:child']);
  assert.is((await b.config('onbuild:child')).config.OnBuild, undefined);
  const dir = await env.context('FROM onbuild:child AS base\nFROM scratch\nCOPY --from=base /out /\n');
  assert.is(await read((await b.out(dir)).out, 'foo'), '11');
});

test('testOnBuildWithChildStage: the base\'s triggers do not run again in a stage built on the stage', async () => {
  await b.ok(await env.context('FROM busybox\nONBUILD RUN mkdir -p /out && touch /out/didrun\n'), ['-t', 'onbuildstage:base']);
  const dir = await env.context(`FROM onbuildstage:base AS base
RUN [ -f /out/didrun ] && touch /step1
RUN rm /out/didrun
RUN [ ! -f /out/didrun ] && touch /step2
FROM base AS child
RUN [ ! -f /out/didrun ] && touch /step3
FROM scratch
COPY --from=child /step* /
`);
  await expectFiles((await b.out(dir)).out, { step1: '', step2: '', step3: '' });
});

test('testOnBuildNamedContext: a trigger\'s --from names a stage of the child, base given as oci-layout://DIR@sha256:…', async () => {
  const base = await env.context('FROM busybox\nONBUILD COPY --from=otherstage /testfile /out/foo\n');
  const tar = join(env.work, 'onbuild-named.tar');
  await b.ok(base, ['--output', `type=oci,dest=${tar}`]);
  const layout = await mkdtemp(join(env.work, 'layout-'));
  await tool('tar', ['-C', layout, '-xf', tar]);
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  assert.is(index.manifests.length, 1);
  const dir = await env.context('FROM busybox AS otherstage\nRUN echo -n "hello" > /testfile\nFROM base AS inputstage\nFROM scratch\nCOPY --from=inputstage /out/foo /bar\n');
  const { out } = await b.out(dir, ['--build-context', `base=oci-layout://${layout}@${index.manifests[0]!.digest}`]);
  assert.is(await read(out, 'bar'), 'hello');
});

test('testOnBuildInheritedStageRun / testOnBuildInheritedStageWithFrom: triggers of a stage run in a stage built on it', async () => {
  let dir = await env.context('FROM busybox AS base\nONBUILD RUN mkdir -p /out && echo -n 11 >> /out/foo\nFROM base AS mid\nRUN cp /out/foo /out/bar\nFROM scratch\nCOPY --from=mid /out/bar /\n');
  assert.is(await read((await b.out(dir)).out, 'bar'), '11');
  dir = await env.context('FROM busybox AS src\nRUN mkdir -p /in && echo -n 12 > /in/file\nFROM busybox AS base\nONBUILD COPY --from=src /in/file /out/foo\nFROM base AS mid\nRUN cp /out/foo /out/bar\nFROM scratch\nCOPY --from=mid /out/bar /\n');
  assert.is(await read((await b.out(dir)).out, 'bar'), '12');
});

test('testOnBuildNewDeps: triggers bring new dependencies (an image, a stage by bind mount)', async () => {
  // BuildKit copies /etc/alpine-release from alpine; a local image with that file stands in.
  await b.ok(await env.context('FROM scratch\nCOPY release /etc/alpine-release\n', { release: '3.20.0\n' }), ['-t', 'alpine-stand-in']);
  await b.ok(await env.context('FROM busybox\nONBUILD COPY --from=alpine-stand-in /etc/alpine-release /out/alpine-release2\n'), ['-t', 'onbuilddeps:base']);
  let { out } = await b.out(await env.context('FROM onbuilddeps:base AS base\nRUN cat /out/alpine-release2 > /out/alpine-release3\nFROM scratch\nCOPY --from=base /out /\n'));
  assert.ok((await read(out, 'alpine-release3')).length > 5);
  await b.ok(await env.context('FROM busybox\nONBUILD RUN --mount=type=bind,target=/in,from=inputstage mkdir /out && cat /in/foo > /out/bar && cat /in/out/alpine-release2 > /out/bar2\n'), ['-t', 'onbuilddeps:base2']);
  ({ out } = await b.out(await env.context(`FROM onbuilddeps:base AS inputstage
RUN cat /out/alpine-release2 > /out/alpine-release4
RUN echo -n foo > /foo
FROM onbuilddeps:base2 AS base
RUN echo -n bar3 > /out/bar3
FROM scratch
COPY --from=base /out /
`)));
  await expectFiles(out, { bar: 'foo', bar3: 'bar3' });
  assert.ok((await read(out, 'bar2')).length > 5);
});

test('testOnBuildWithCacheMount: a trigger\'s cache mount is the child\'s cache mount', async () => {
  await b.ok(await env.context('FROM busybox\nONBUILD RUN --mount=type=cache,target=/cache echo -n 42 >> /cache/foo && echo -n 11 >> /bar\n'), ['-t', 'onbuildcache:base']);
  await b.ok(await env.context('FROM onbuildcache:base\nRUN --mount=type=cache,target=/cache [ "$(cat /cache/foo)" = "42" ] && [ "$(cat /bar)" = "11" ]\n'));
});

test.run();

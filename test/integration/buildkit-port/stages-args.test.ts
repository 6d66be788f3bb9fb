import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { useBuildRoot } from '../../helpers/build-root.js';
import { builder, read } from './stages-helpers.js';

/** BuildKit frontend/dockerfile/dockerfile_args_test.go, ported (busybox from the local store). */
const test = suite('buildkit-port: stages / args');
const env = useBuildRoot(test, 'bk-stages-args');
const b = builder(env);

test('testGlobalArg: a global ARG default in FROM, replaced by --build-arg', async () => {
  await b.ok(await env.context('FROM busybox AS tagged\n'), ['-t', 'busybox:latest2']);
  const dir = await env.context('ARG tag=nosuchtag\nFROM busybox:${tag}\n');
  await b.ok(dir, ['--build-arg', 'tag=latest2']);
});

test('testGlobalArgErrors: ${FOO:?msg} in a global ARG fails with the message, passes with the arg', async () => {
  const dir = await env.context('ARG FOO=${FOO:?"custom error"}\nFROM busybox\n');
  const r = await b.fails(dir);
  assert.match(r.stderr, 'FOO: custom error');
  await b.ok(dir, ['--build-arg', 'FOO=bar']);
});

test('testArgDefaultExpansion: ${FOO:?msg} in a stage ARG default; a value for either ARG passes', async () => {
  const dir = await env.context('FROM scratch\nARG FOO\nARG BAR=${FOO:?"foo missing"}\n');
  const r = await b.fails(dir);
  assert.match(r.stderr, 'FOO: foo missing');
  assert.match(r.stderr, 'Dockerfile:3');
  await b.ok(dir, ['--build-arg', 'FOO=123']);
  await b.ok(dir, ['--build-arg', 'BAR=123']);
});

test('testMultiArgs: several ARGs per line, global defaults inherited by name', async () => {
  const dir = await env.context(`ARG a1="foo bar" a2=box
ARG a3="$a2-foo"
FROM busy$a2 AS build
ARG a3 a4="123 456" a1
RUN echo -n "$a1:$a3:$a4" > /out
FROM scratch
COPY --from=build /out .
`);
  const { out } = await b.out(dir);
  assert.is(await read(out, 'out'), 'foo bar:box-foo:123 456');
});

test('testQuotedMetaArgs: a quoted global default expands in a stage ARG', async () => {
  const dir = await env.context(`ARG a1="box"
ARG a2="$a1-foo"
FROM busy$a1 AS build
ARG a2
ARG a3="bar-$a2"
RUN echo -n $a3 > /out
FROM scratch
COPY --from=build /out .
`);
  assert.is(await read((await b.out(dir)).out, 'out'), 'bar-box-foo');
});

test('testTargetStageNameArg: TARGETSTAGE is the target (or last) stage name, only once declared', async () => {
  const df = `FROM busybox AS base
WORKDIR /out
RUN echo -n "value:$TARGETSTAGE" > /out/first
ARG TARGETSTAGE
RUN echo -n "value:$TARGETSTAGE" > /out/second
FROM scratch AS foo
COPY --from=base /out/ /
FROM scratch
COPY --from=base /out/ /
`;
  const dir = await env.context(df);
  let { out } = await b.out(dir, ['--target', 'foo']);
  assert.is(await read(out, 'first'), 'value:');
  assert.is(await read(out, 'second'), 'value:foo');
  ({ out } = await b.out(dir));
  assert.is(await read(out, 'first'), 'value:');
  assert.is(await read(out, 'second'), 'value:default');
  const named = await env.context(`${df}FROM scratch AS final\nCOPY --from=base /out/ /\n`);
  ({ out } = await b.out(named));
  assert.is(await read(out, 'second'), 'value:final');
});

test('testBuiltinArgs: proxy args reach RUN undeclared; a changed proxy value alone keeps the cache', async () => {
  const dir = await env.context(`FROM busybox AS build
ARG FOO
ARG BAR
ARG BAZ=bazcontent
RUN echo -n $HTTP_PROXY::$NO_PROXY::$FOO::$BAR::$BAZ > /out
FROM scratch
COPY --from=build /out /
`);
  let { out } = await b.out(dir, ['--build-arg', 'FOO=foocontents', '--build-arg', 'http_proxy=hpvalue', '--build-arg', 'NO_PROXY=npvalue']);
  assert.is(await read(out, 'out'), 'hpvalue::npvalue::foocontents::::bazcontent');
  ({ out } = await b.out(dir, ['--build-arg', 'FOO=foocontents', '--build-arg', 'http_proxy=hpvalue2']));
  assert.is(await read(out, 'out'), 'hpvalue::npvalue::foocontents::::bazcontent', 'proxy values are not part of the cache key');
  ({ out } = await b.out(dir, ['--build-arg', 'FOO=foocontents2', '--build-arg', 'http_proxy=hpvalue2']));
  assert.is(await read(out, 'out'), 'hpvalue2::::foocontents2::::bazcontent');
});

test('testDefaultEnvWithArgs: ENV built from an ARG with ${:-} and ${%%}, nil / empty / override', async () => {
  const dir = await env.context(
    `ARG image=idlebox
FROM busy\${image#idle} AS build
ARG my_arg
ENV my_arg "my_arg=\${my_arg:-def_val}"
ENV my_trimmed_arg "\${my_arg%%e*}"
COPY myscript.sh myscript.sh
RUN ./myscript.sh $my_arg $my_trimmed_arg
FROM scratch
COPY --from=build /out /out
`,
    // The local busybox has its applets in /bin only (no /usr/bin/env).
    { 'myscript.sh': '#!/bin/sh\necho -n $my_arg $* > /out\n' },
  );
  const { chmod } = await import('node:fs/promises');
  await chmod(`${dir}/myscript.sh`, 0o700);
  for (const [args, expected] of [
    [[], 'my_arg=def_val my_arg=def_val my_arg=d'],
    [['--build-arg', 'my_arg='], 'my_arg=def_val my_arg=def_val my_arg=d'],
    [['--build-arg', 'my_arg=override'], 'my_arg=override my_arg=override my_arg=ov'],
  ] as const) {
    assert.is(await read((await b.out(dir, args)).out, 'out'), expected, args.join(' '));
  }
});

test('testEmptyStringArgInEnv: ARG BAR= is in RUN\'s env (empty), ARG FOO without value is not', async () => {
  const dir = await env.context('FROM busybox AS build\nARG FOO\nARG BAR=\nRUN env > env.txt\nFROM scratch\nCOPY --from=build env.txt .\n');
  const envTxt = await read((await b.out(dir)).out, 'env.txt');
  assert.match(envTxt, /^BAR=$/m);
  assert.not.match(envTxt, /^FOO=/m);
});

test('testEnvEmptyFormatting: a legacy ENV value with %s stays literal', async () => {
  await b.ok(await env.context('FROM busybox AS build\nENV myenv foo%sbar\nRUN [ "$myenv" = \'foo%sbar\' ]\n'));
});

test('issue 09: an ARG declared after ENV of the same key wins in RUN and later expansion; a later ENV wins back', async () => {
  const dir = await env.context(`FROM busybox AS build
ENV X=env
ARG X=default
RUN echo -n "$X" > /run1
ENV Y=$X
RUN echo -n "$Y" > /y
ENV X=again
RUN echo -n "$X" > /run2
FROM scratch
COPY --from=build /run1 /y /run2 /
`);
  let { out } = await b.out(dir, ['--build-arg', 'X=cli']);
  assert.is(await read(out, 'run1'), 'cli');
  assert.is(await read(out, 'y'), 'cli');
  assert.is(await read(out, 'run2'), 'again');
  ({ out } = await b.out(dir));
  assert.is(await read(out, 'run1'), 'default');
  // An ARG before the ENV: the ENV wins.
  const before = await env.context('FROM busybox AS build\nARG X=default\nENV X=env\nRUN echo -n "$X" > /x\nFROM scratch\nCOPY --from=build /x /\n');
  assert.is(await read((await b.out(before, ['--build-arg', 'X=cli'])).out, 'x'), 'env');
});

test.run();

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { useBuildRoot } from '../../helpers/build-root.js';
import { tsbuildOk } from '../../helpers/cli.js';
import { tool } from '../../helpers/run-tool.js';
import { rawjsonEvents, started } from '../../helpers/progress-events.js';
import { builder, read } from './stages-helpers.js';

/** BuildKit frontend/dockerfile/dockerfile_core_test.go and dockerfile_multistage_test.go, ported. */
const test = suite('buildkit-port: stages / core, multistage');
const env = useBuildRoot(test, 'bk-stages-core');
const b = builder(env);

test('testDockerfileDirs: absolute dirs, relative dirs from the working directory, Dockerfile apart from the context', async () => {
  const df = 'FROM busybox\nCOPY foo /foo2\nCOPY foo /\nRUN echo -n bar > foo3\nRUN test -f foo\nRUN cmp -s foo foo2\nRUN cmp -s foo foo3\n';
  const dir = await env.context(df, { foo: 'bar' });
  await b.ok(dir);
  await tsbuildOk(['--root', env.root, 'build', '-f', 'Dockerfile', '.'], { cwd: dir });
  const dfDir = await env.context(df);
  const ctxDir = await env.context(undefined, { foo: 'bar' });
  await b.ok(ctxDir, ['-f', join(dfDir, 'Dockerfile')]);
});

test('testSymlinkedDockerfile: Dockerfile a symlink to Dockerfile.web beside it', async () => {
  const dir = await env.context(undefined, { 'Dockerfile.web': 'FROM scratch\nENV foo bar\n' });
  await symlink('Dockerfile.web', join(dir, 'Dockerfile'));
  await b.ok(dir);
});

test('testSymlinkDestination: COPY into a directory reached through a symlink an ADDed tar made', async () => {
  const dir = await env.context('FROM scratch\nADD t.tar /\nCOPY foo /symlink/\n', { foo: 'content0' });
  const tarSrc = await mkdtemp(join(env.work, 'tar-'));
  await symlink('../tmp/symlink-target', join(tarSrc, 'symlink'));
  await tool('tar', ['-C', tarSrc, '-cf', join(dir, 't.tar'), 'symlink']);
  const { out } = await b.out(dir);
  assert.is(await read(out, 'tmp/symlink-target/foo'), 'content0');
});

test('testContextChangeDirToFile: a context path that was a directory and is now a file', async () => {
  const dir = await env.context('FROM scratch\nCOPY foo /\n', { 'foo/bar': 'contents' });
  await b.ok(dir);
  await rm(join(dir, 'foo'), { recursive: true });
  await writeFile(join(dir, 'foo'), 'contents2');
  assert.is(await read((await b.out(dir)).out, 'foo'), 'contents2');
});

test('testExposeExpansion: EXPOSE of an ARG with several ports, plus another EXPOSE', async () => {
  const dir = await env.context('FROM scratch\nARG PORTS="3000 4000/udp"\nEXPOSE $PORTS\nEXPOSE 5000\n');
  await b.ok(dir, ['-t', 'expose:test']);
  const c = await b.config('expose:test');
  assert.equal(Object.keys(c.config.ExposedPorts as object).sort(), ['3000/tcp', '4000/udp', '5000/tcp']);
});

test('testDockerfileLowercase: a context with only `dockerfile` builds (BuildKit\'s fallback)', async () => {
  const dir = await env.context(undefined, { dockerfile: 'FROM scratch\nLABEL lower=yes\n' });
  await b.ok(dir, ['-t', 'lower:test']);
  assert.equal((await b.config('lower:test')).config.Labels, { lower: 'yes' });
});

test('testLabels: --label adds to the Dockerfile\'s LABELs', async () => {
  const dir = await env.context('FROM scratch\nLABEL foo=bar\n');
  await b.ok(dir, ['-t', 'labels:test', '--label', 'bar=baz']);
  assert.equal((await b.config('labels:test')).config.Labels, { foo: 'bar', bar: 'baz' });
});

test('testUser: USER by name, id, name:group, unknown ids; supplementary groups; USER in the config', async () => {
  const check = (expected: string) => `RUN [ "$(id -u):$(id -g)/$(id -un):$(id -gn)/$(id -G):$(id -Gn)" = '${expected}' ]`;
  const dir = await env.context(`FROM busybox AS base
RUN mkdir -m 0777 /out
RUN id -un > /out/rootuser
RUN [ "$(id -u):$(id -g)/$(id -un):$(id -gn)" = '0:0/root:root' ]
USER root
RUN [ "$(id -G):$(id -Gn)" = '0 10:root wheel' ]
RUN echo 'dockerio:x:1001:1001::/bin:/bin/false' >> /etc/passwd && \\
\techo 'dockerio:x:1001:' >> /etc/group
USER dockerio
${check('1001:1001/dockerio:dockerio/1001:dockerio')}
USER root
${check('0:0/root:root/0 10:root wheel')} && \\
\techo 'supplementary:x:1002:dockerio' >> /etc/group
USER dockerio
${check('1001:1001/dockerio:dockerio/1001 1002:dockerio supplementary')}
USER 1001
${check('1001:1001/dockerio:dockerio/1001 1002:dockerio supplementary')}
USER dockerio:dockerio
${check('1001:1001/dockerio:dockerio/1001:dockerio')}
USER 1001:dockerio
${check('1001:1001/dockerio:dockerio/1001:dockerio')}
USER dockerio:1001
${check('1001:1001/dockerio:dockerio/1001:dockerio')}
USER 1001:1001
${check('1001:1001/dockerio:dockerio/1001:dockerio')}
USER dockerio:supplementary
${check('1001:1002/dockerio:supplementary/1002:supplementary')}
USER dockerio:1002
${check('1001:1002/dockerio:supplementary/1002:supplementary')}
USER 1001:supplementary
${check('1001:1002/dockerio:supplementary/1002:supplementary')}
USER 1001:1002
${check('1001:1002/dockerio:supplementary/1002:supplementary')}
USER 1042:1043
${check('1042:1043/1042:1043/1043:1043')}
USER daemon
RUN id -un > /out/daemonuser
FROM scratch
COPY --from=base /out /
USER nobody
`);
  const { out } = await b.out(dir, ['-t', 'user:test']);
  assert.is(await read(out, 'rootuser'), 'root\n');
  assert.is(await read(out, 'daemonuser'), 'daemon\n');
  assert.is((await b.config('user:test')).config.User, 'nobody');
});

test('testUserAdditionalGids: the primary group is in the additional gids (CVE-2023-25173)', async () => {
  await b.ok(await env.context(`FROM busybox
SHELL ["/bin/sh", "-euxc"]
RUN [ "$(id)" = "uid=0(root) gid=0(root) groups=0(root),10(wheel)" ]
USER 1234
RUN [ "$(id)" = "uid=1234 gid=0(root) groups=0(root)" ]
USER 1234:1234
RUN [ "$(id)" = "uid=1234 gid=1234 groups=1234" ]
USER daemon
RUN [ "$(id)" = "uid=1(daemon) gid=1(daemon) groups=1(daemon)" ]
`));
});

test('testDockerfileCheckHostname: BUILDKIT_SANDBOX_HOSTNAME names RUN\'s host (/etc/hosts, $HOSTNAME, hostname)', async () => {
  // BuildKit's "meta" subtests set the same value through its `hostname` frontend option, which
  // has no command-line flag; the build arg is how a CLI user sets it.
  const dir = await env.context('FROM busybox\nRUN cat /etc/hosts | grep foo\nRUN echo $HOSTNAME | grep foo\n\tRUN echo $(hostname) | grep foo\n\t');
  await b.ok(dir, ['--build-arg', 'BUILDKIT_SANDBOX_HOSTNAME=foo']);
  const r = await b.fails(dir);
  assert.match(r.stderr, 'Dockerfile:2');
});

test('testStepNames: step numbers count RUN/COPY/ADD/WORKDIR and FROM an image, not FROM scratch', async () => {
  const dir = await env.context('FROM busybox AS base\nWORKDIR /out\nRUN echo "base" > base\nFROM scratch\nCOPY --from=base --chmod=0644 /out /out\n');
  const r = await tsbuildOk(['--root', env.root, 'build', '--progress', 'rawjson', '--no-cache', dir]);
  const names = started(rawjsonEvents(r.stderr));
  assert.ok(names.includes('[base 3/3] RUN echo "base" > base'), names.join('\n'));
  assert.ok(names.includes('[stage-1 1/1] COPY --from=base --chmod=0644 /out /out'), names.join('\n'));
});

test('testTargetMistype: an unknown --target suggests the near stage name', async () => {
  const dir = await env.context('FROM scratch AS build\nCOPY Dockerfile /out\nFROM scratch\nCOPY --from=build /out /\n');
  const r = await b.fails(dir, ['--target', 'bulid']);
  assert.match(r.stderr, 'target stage "bulid" could not be found (did you mean build?)');
});

test('testMultiStageImplicitFrom: --from an image name; a stage of that name masks the image', async () => {
  let { out } = await b.out(await env.context('FROM scratch\nCOPY --from=busybox /etc/passwd test\n'));
  assert.match(await read(out, 'test'), 'root');
  ({ out } = await b.out(await env.context('FROM busybox AS golang\nRUN mkdir -p /usr/bin && echo -n foo > /usr/bin/go\nFROM scratch\nCOPY --from=golang /usr/bin/go go\n')));
  assert.match(await read(out, 'go'), 'foo');
});

test('testMultiStageCaseInsensitive: stage names, --from and --target ignore case', async () => {
  const dir = await env.context('FROM scratch AS STAge0\nCOPY foo bar\nFROM scratch AS staGE1\nCOPY --from=staGE0 bar baz\nFROM scratch\nCOPY --from=stage1 baz bax\n', { foo: 'foo-contents' });
  assert.match(await read((await b.out(dir, ['--target', 'Stage1'])).out, 'baz'), 'foo-contents');
});

test('testOutOfOrderStage: --from a stage defined later fails', async () => {
  for (const src of ['/', '/d2']) {
    const dir = await env.context(`FROM busybox AS target\nCOPY --from=build ${src} /out\nFROM busybox AS build\nCOPY /Dockerfile /d2\nFROM target\n`);
    const r = await b.fails(dir);
    assert.match(r.stderr, 'cannot copy from stage');
    assert.match(r.stderr, 'needs to be defined before current stage');
  }
});

test('testEmptyStages: a Dockerfile with only a global ARG', async () => {
  const r = await b.fails(await env.context('ARG foo=bar'));
  assert.match(r.stderr, 'dockerfile contains no stages to build');
});

test('issue 09: a repeated stage name is a DuplicateStageName warning and its last stage is used', async () => {
  const dir = await env.context('FROM busybox AS a\nRUN echo -n 1 > /v\nFROM busybox AS a\nRUN echo -n 2 > /v\nFROM a AS b\nFROM scratch\nCOPY --from=a /v /v\nCOPY --from=b /v /vb\n');
  const { out, stderr } = await b.out(dir);
  assert.match(stderr, /DuplicateStageName: Duplicate stage name "a", stage names should be unique \(.*Dockerfile:3\)/);
  assert.is(await read(out, 'v'), '2');
  assert.is(await read(out, 'vb'), '2');
});

test.run();

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFile, lstat, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { useBuildRoot } from '../helpers/build-root.js';
import { tsbuild, tsbuildOk } from '../helpers/cli.js';
import { tool } from '../helpers/run-tool.js';

/**
 * Real builds, as root, with runc and overlayfs, on a busybox base image made by tsbuild itself;
 * every output is checked by independent tools (oci-image-tool, skopeo, umoci, GNU tar).
 */
const test = suite('integration: build an image end to end');
const env = useBuildRoot(test, 'it');
const FS_DOCKERFILE = `FROM busybox
ENV GREETING="hello world" APP_HOME=/app
WORKDIR $APP_HOME
RUN mkdir -p /data/sub && echo one > /data/keep && echo two > /data/sub/x && echo gone > /data/gone \\
 && ln -s /data/keep /data/link && ln /data/keep /data/hard
RUN rm /data/gone && echo changed > /data/keep && rm -rf /data/sub && mkdir /data/sub && echo new > /data/sub/y \\
 && chmod 640 /data/keep && chown 1000:1000 /data/sub/y /home/app && chmod 4755 /data/sub && rm /bin/vi
COPY --chown=app:app files/ /app/files/
COPY --chmod=600 files/a.txt /app/secret.txt
USER app
RUN echo "$GREETING" > /home/app/greeting && id -u > /home/app/uid
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /home/app/greeting"]
`;

test('RUN, COPY and metadata produce the right layers, whiteouts and config', async () => {
  const ctx = await env.context(FS_DOCKERFILE, { 'files/a.txt': 'A\n', 'files/sub/b.txt': 'B\n' });
  const layout = join(env.work, 'fs-layout');
  await tsbuildOk(['--root', env.root, 'build', '-t', 'fs-test:v1', '--output', `type=oci,dest=${layout},tar=false`, ctx]);

  await tool('oci-image-tool', ['validate', '--type', 'image', '--ref', 'name=v1', layout]);
  const config = JSON.parse(await tool('skopeo', ['inspect', '--config', `oci:${layout}:v1`]));
  assert.ok(config.config.Env.includes('GREETING=hello world'));
  assert.ok(config.config.Env.some((e: string) => e.startsWith('PATH=')));
  assert.is(config.config.WorkingDir, '/app');
  assert.is(config.config.User, 'app');
  assert.equal(config.config.Entrypoint, ['/bin/sh', '-c']);
  assert.equal(config.config.Cmd, ['cat /home/app/greeting']);
  // base (1) + WORKDIR mkdir + 2 RUN + 2 COPY + RUN as app = 7 layers
  assert.is(config.rootfs.diff_ids.length, 7);
  const nonEmpty = config.history.filter((h: { empty_layer?: boolean }) => !h.empty_layer).length;
  assert.is(nonEmpty, config.rootfs.diff_ids.length, 'one non-empty history entry per layer');

  // The deleting RUN's layer carries OCI whiteouts and an opaque marker (GNU tar lists them).
  const manifest = JSON.parse(await tool('skopeo', ['inspect', '--raw', `oci:${layout}:v1`]));
  const layer3 = manifest.layers[3].digest.slice(7);
  const listing = await tool('tar', ['-tzf', join(layout, 'blobs/sha256', layer3)]);
  assert.match(listing, /^data\/\.wh\.gone$/m);
  assert.match(listing, /^data\/sub\/\.wh\.\.wh\.\.opq$/m);
  assert.match(listing, /^bin\/\.wh\.vi$/m);

  const bundle = join(env.work, 'fs-bundle');
  await tool('umoci', ['unpack', '--image', `${layout}:v1`, bundle]);
  const rootfs = join(bundle, 'rootfs');
  const read = (p: string) => readFile(join(rootfs, p), 'utf8');
  assert.is(await read('data/keep'), 'changed\n');
  assert.is((await lstat(join(rootfs, 'data/keep'))).mode & 0o7777, 0o640);
  assert.is(await read('data/hard'), 'one\n', 'the copy-up broke the hardlink, as in any overlay build');
  assert.is(await readlink(join(rootfs, 'data/link')), '/data/keep');
  assert.not.ok(await lstat(join(rootfs, 'data/gone')).catch(() => undefined), 'deleted file stays deleted');
  assert.not.ok(await lstat(join(rootfs, 'data/sub/x')).catch(() => undefined), 'replaced directory hides old content');
  assert.not.ok(await lstat(join(rootfs, 'bin/vi')).catch(() => undefined), 'file of the base image deleted');
  const sub = await lstat(join(rootfs, 'data/sub'));
  assert.is(sub.mode & 0o7777, 0o4755);
  const y = await lstat(join(rootfs, 'data/sub/y'));
  assert.equal([y.uid, y.gid], [1000, 1000]);
  const a = await lstat(join(rootfs, 'app/files/a.txt'));
  assert.equal([a.uid, a.gid], [1000, 1000], 'COPY --chown=app:app');
  assert.is(await read('app/files/sub/b.txt'), 'B\n', 'directory source copies its contents');
  const secret = await lstat(join(rootfs, 'app/secret.txt'));
  assert.equal([secret.uid, secret.gid, secret.mode & 0o7777], [0, 0, 0o600], 'COPY --chmod, context files owned by root');
  assert.is(await read('home/app/greeting'), 'hello world\n', 'ENV reaches RUN');
  assert.is(await read('home/app/uid'), '1000\n', 'USER applies to RUN');
  assert.not.ok(await lstat(join(rootfs, 'etc/hosts')).catch(() => undefined), 'runtime mount points do not leak into layers');
  assert.not.ok(await lstat(join(rootfs, 'proc')).catch(() => undefined));
});

test('metadata instructions land in the image config as docker and BuildKit record them', async () => {
  const ctx = await env.context(`FROM busybox
MAINTAINER Jane Doe <jane@example.com>
LABEL a=1 "b c"="d e"
EXPOSE 80 443/udp 8000-8001
VOLUME ["/data", "/logs"]
VOLUME /cache
STOPSIGNAL SIGTERM
SHELL ["/bin/sh", "-ec"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD wget -q localhost || exit 1
ONBUILD RUN echo child
USER 1000:1000
ENTRYPOINT echo hi
`);
  const layout = join(env.work, 'meta-layout');
  await tsbuildOk(['--root', env.root, 'build', '--label', 'from=cli', '-t', 'meta', '--output', `type=oci,dest=${layout},tar=false`, ctx]);
  // Read the raw config blob: skopeo's --config view drops the docker extensions (Healthcheck, OnBuild, Shell).
  const manifest = JSON.parse(await tool('skopeo', ['inspect', '--raw', `oci:${layout}:latest`]));
  const config = JSON.parse(await readFile(join(layout, 'blobs/sha256', manifest.config.digest.slice(7)), 'utf8'));
  assert.is(config.author, 'Jane Doe <jane@example.com>');
  assert.equal(config.config, {
    User: '1000:1000',
    ExposedPorts: { '443/udp': {}, '80/tcp': {}, '8000/tcp': {}, '8001/tcp': {} },
    Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
    Entrypoint: ['/bin/sh', '-ec', 'echo hi'],
    Volumes: { '/cache': {}, '/data': {}, '/logs': {} },
    WorkingDir: '/',
    Labels: { a: '1', 'b c': 'd e', from: 'cli' },
    StopSignal: 'SIGTERM',
    Shell: ['/bin/sh', '-ec'],
    Healthcheck: { Test: ['CMD-SHELL', 'wget -q localhost || exit 1'], Interval: 30e9, Timeout: 5e9, StartPeriod: 10e9, Retries: 3 },
    OnBuild: ['RUN echo child'],
    // Set by the base's CMD and kept, as BuildKit's dispatchEntrypoint leaves it.
    ArgsEscaped: true,
  });
  assert.not.ok('Cmd' in config.config, 'a shell-form ENTRYPOINT resets the inherited CMD (omitted, as BuildKit writes it)');
  const added = config.history.slice(2);
  assert.ok(added.every((h: { empty_layer?: boolean; created?: string }) => h.empty_layer === true && !!h.created), 'metadata steps add no layer');
  assert.equal(added.map((h: { created_by: string }) => h.created_by.split(' ')[0]), [
    // ONBUILD records its trigger only, with no history entry (BuildKit's dispatchOnbuild).
    'MAINTAINER', 'LABEL', 'EXPOSE', 'VOLUME', 'VOLUME', 'STOPSIGNAL', 'SHELL', 'HEALTHCHECK', 'USER', 'ENTRYPOINT',
  ]);
  assert.is(config.rootfs.diff_ids.length, 1, 'only the base layer');
});

test('multistage COPY --from, --target and build args; oci-archive and docker-archive accepted by skopeo', async () => {
  const ctx = await env.context(`FROM busybox AS build
ARG VERSION=1
RUN mkdir /out && echo "version $VERSION" > /out/v.txt

FROM busybox AS runtime
COPY --from=build /out/v.txt /v.txt
CMD ["cat", "/v.txt"]

FROM runtime AS extra
RUN echo never > /never
`);
  const ociTar = join(env.work, 'app.tar');
  const dockerTar = join(env.work, 'app-docker.tar');
  const local = join(env.work, 'app-local');
  await tsbuildOk(['--root', env.root, 'build', '-t', 'app', '--target', 'runtime', '--build-arg', 'VERSION=2',
    '--output', `type=oci,dest=${ociTar}`, '--output', `type=docker,dest=${dockerTar}`, '--output', `type=local,dest=${local}`, ctx]);
  const inspected = JSON.parse(await tool('skopeo', ['inspect', `oci-archive:${ociTar}`]));
  assert.is(inspected.Layers.length, 2, 'base + COPY; the extra stage is not built');
  const fromDocker = JSON.parse(await tool('skopeo', ['inspect', `docker-archive:${dockerTar}`]));
  assert.is(fromDocker.Digest === undefined ? 2 : fromDocker.Layers.length, 2);
  assert.is(await readFile(join(local, 'v.txt'), 'utf8'), 'version 2\n');
  assert.not.ok(await lstat(join(local, 'never')).catch(() => undefined));
});

test('FROM an image built earlier into the same store', async () => {
  const ctx = await env.context('FROM fs-test:v1\nRUN cat /home/app/greeting > /home/app/again\n');
  const local = join(env.work, 'child-local');
  await tsbuildOk(['--root', env.root, 'build', '-t', 'child', '--output', `type=local,dest=${local}`, ctx]);
  assert.is(await readFile(join(local, 'home/app/again'), 'utf8'), 'hello world\n');
});

test('a failing RUN exits 1 naming the Dockerfile line, and leaves no tag', async () => {
  const ctx = await env.context('FROM busybox\nRUN echo about to fail && exit 3\n');
  const r = await tsbuild(['--root', env.root, 'build', '-t', 'broken', ctx]);
  assert.is(r.code, 1);
  assert.match(r.stderr, /Dockerfile:2/);
  assert.match(r.stderr, /exit code: 3/);
  assert.match(r.stderr, /about to fail/);
  const index = JSON.parse(await readFile(join(env.root, 'store/index.json'), 'utf8'));
  assert.not.ok(JSON.stringify(index).includes('broken'));
});

test.run();

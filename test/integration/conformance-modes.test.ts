import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { lstat, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CliResult } from '../helpers/cli.js';
import { assertSameLayouts, inEveryMode, layoutFiles } from '../helpers/every-mode.js';
import { makeBusyboxRootfs } from '../helpers/busybox-rootfs.js';
import { tool } from '../helpers/run-tool.js';

/**
 * Issue 09 in every isolation mode: the behaviours the BuildKit conformance pass changed
 * (ARG after ENV, RUN --mount without a target, unknown user names, COPY onto a dangling link,
 * COPY --parents with a pivot, ADD --chown of an archive, ONBUILD heredocs, cache mounts) give
 * the same bytes as root, root without CAP_SYS_ADMIN and a user with subordinate ids.
 */
const test = suite('integration: conformance fixes hold in every isolation mode');

const DOCKERFILE = [
  'FROM busybox AS base',
  'ENV X=env',
  'ARG X=default',
  'RUN echo $X > /x',
  'WORKDIR /work',
  'RUN --mount=type=bind,source=. ls /work > /listing',
  'USER docker',
  'WORKDIR /test',
  'USER root',
  'COPY --chown=nosuchuser:nosuchgroup f.txt /owned',
  'RUN ln -s /nowhere/file /dst',
  'COPY f.txt /dst',
  'COPY --parents a*/./c/**/e /parents/',
  'ADD --chown=1000:10 bundle.tar /opt/',
  'ONBUILD RUN <<EOF',
  'echo from-onbuild > /onbuild',
  'EOF',
  '',
  'FROM base',
  'RUN --mount=type=cache,target=/cache echo cached > /cache/x && cp /cache/x /from-cache',
  '',
].join('\n');

test('root, root without CAP_SYS_ADMIN and a rootless user build the same image, and it is what BuildKit builds', async () => {
  let ctx = '';
  const built = await inEveryMode(
    { SOURCE_DATE_EPOCH: '1700000000' },
    async (shared) => {
      ctx = join(shared, 'ctx');
      await mkdir(join(ctx, 'a1/c/d'), { recursive: true });
      await makeBusyboxRootfs(join(ctx, 'rootfs'));
      await writeFile(join(ctx, 'Base.Dockerfile'), 'FROM scratch\nCOPY rootfs/ /\nCMD ["sh"]\n');
      await writeFile(join(ctx, 'Dockerfile'), DOCKERFILE);
      await writeFile(join(ctx, 'f.txt'), 'f\n');
      await writeFile(join(ctx, 'a1/c/d/e'), 'e\n');
      const pkg = join(shared, 'pkg');
      await mkdir(join(pkg, 'pkg/bin'), { recursive: true });
      await writeFile(join(pkg, 'pkg/bin/tool'), 'tool\n');
      await tool('tar', ['-cf', join(ctx, 'bundle.tar'), '--owner=1234', '--group=5678', '--numeric-owner', '-C', pkg, 'pkg']);
      await tool('chmod', ['-R', 'a+rX', ctx]);
    },
    async (mode) => {
      const ok = (r: CliResult, what: string): void => assert.is(r.code, 0, `${mode.name}: ${what}: ${r.stderr}`);
      ok(await mode.run([...mode.rootArgs, 'build', '-f', join(ctx, 'Base.Dockerfile'), '-t', 'busybox', ctx]), 'base');
      const outputs = ['--output', `type=oci,dest=${join(mode.out, 'img')},tar=false`, '--output', `type=local,dest=${join(mode.out, 'fs')}`];
      ok(await mode.run([...mode.rootArgs, 'build', '--build-arg', 'X=cli', ...outputs, ctx]), 'image');
      return { layout: await layoutFiles(join(mode.out, 'img')), fs: join(mode.out, 'fs'), facts: await facts(join(mode.out, 'fs')) };
    },
  );
  assertSameLayouts({ root: built.root.layout, 'no CAP_SYS_ADMIN': built['no CAP_SYS_ADMIN'].layout, rootless: built.rootless.layout });
  // What BuildKit builds (the oracle test checks these against docker's BuildKit).
  assert.equal(built.root.facts, {
    x: 'cli\n', // an ARG after an ENV of its name wins
    listsContext: true, // a bind mount without a target is at the WORKDIR
    unknownOwners: [0, 0, 0], // unknown user names are 0:0
    dstIsLink: true, // COPY onto a link keeps it...
    linkTarget: 'f\n', // ...and writes where it points
    pivot: 'e\n', // the ./ pivot after a wildcard
    archiveOwner: [1000, 10], // ADD --chown owns extracted entries
    onbuild: 'from-onbuild\n', // an ONBUILD heredoc runs in the child
    cache: 'cached\n',
  });
});

/** The exported root filesystem's answers to what the Dockerfile exercises. */
async function facts(fs: string): Promise<Record<string, unknown>> {
  const text = (p: string) => readFile(join(fs, p), 'utf8');
  const st = (p: string) => lstat(join(fs, p));
  return {
    x: await text('x'),
    listsContext: (await text('listing')).includes('Dockerfile'),
    unknownOwners: [(await st('test')).uid, (await st('owned')).uid, (await st('owned')).gid],
    dstIsLink: (await st('dst')).isSymbolicLink(),
    linkTarget: await text('nowhere/file'),
    pivot: await text('parents/c/d/e'),
    archiveOwner: [(await st('opt/pkg/bin/tool')).uid, (await st('opt/pkg/bin/tool')).gid],
    onbuild: await text('onbuild'),
    cache: await text('from-cache'),
  };
}

test.run();

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { chmod, chown, lstat, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tsbuild, tsbuildWithoutSysAdmin, type CliResult } from '../helpers/cli.js';
import { withBuildUser } from '../helpers/build-user.js';
import { makeBusyboxRootfs } from '../helpers/busybox-rootfs.js';
import { mountsUnder } from '../helpers/mounts.js';
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

async function layoutFiles(dir: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const walk = async (rel: string): Promise<void> => {
    for (const e of await readdir(join(dir, rel), { withFileTypes: true })) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(p);
      else out.set(p, await readFile(join(dir, p)));
    }
  };
  await walk('');
  return out;
}

test('root, root without CAP_SYS_ADMIN and a rootless user build the same image, and it is what BuildKit builds', async () => {
  const shared = await mkdtemp(join(tmpdir(), 'tsbuild-conf-modes-'));
  try {
    await chmod(shared, 0o755);
    const ctx = join(shared, 'ctx');
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
    const env = { SOURCE_DATE_EPOCH: '1700000000' };
    const ok = (r: CliResult, what: string): void => assert.is(r.code, 0, `${what}: ${r.stderr}`);
    const build = async (name: string, run: (args: string[]) => Promise<CliResult>, out: string, rootArgs: string[]): Promise<Map<string, Buffer>> => {
      ok(await run([...rootArgs, 'build', '-f', join(ctx, 'Base.Dockerfile'), '-t', 'busybox', ctx]), `${name}: base`);
      const outputs = ['--output', `type=oci,dest=${join(out, 'img')},tar=false`, '--output', `type=local,dest=${join(out, 'fs')}`];
      ok(await run([...rootArgs, 'build', '--build-arg', 'X=cli', ...outputs, ctx]), `${name}: image`);
      return layoutFiles(join(out, 'img'));
    };
    const outs: string[] = [];
    const fresh = async (uid = 0, gid = 0): Promise<string> => {
      const d = await mkdtemp(join(shared, 'out-'));
      await chown(d, uid, gid);
      outs.push(d);
      return d;
    };
    const rootOut = await fresh();
    const asRoot = await build('root', (a) => tsbuild(a, { env }), rootOut, ['--root', join(rootOut, 'root')]);
    const noCapOut = await fresh();
    const noCap = await build('no CAP_SYS_ADMIN', (a) => tsbuildWithoutSysAdmin(a, { env }), noCapOut, ['--root', join(noCapOut, 'root')]);
    const rootless = await withBuildUser({ subordinateIds: true }, async (user) => build('rootless', (a) => user.tsbuild(a, { env }), await fresh(user.uid, user.gid), []));
    for (const [name, other] of [['no CAP_SYS_ADMIN', noCap], ['rootless', rootless]] as const) {
      assert.equal([...other.keys()].sort(), [...asRoot.keys()].sort(), `${name}: same blobs`);
      for (const [p, bytes] of asRoot) assert.ok(bytes.equals(other.get(p)!), `${name}: ${p} differs from root's`);
    }

    // What BuildKit builds (the oracle test checks these against docker's BuildKit).
    const fs = join(rootOut, 'fs');
    const text = (p: string) => readFile(join(fs, p), 'utf8');
    const st = (p: string) => lstat(join(fs, p));
    assert.is(await text('x'), 'cli\n', 'an ARG after an ENV of its name wins');
    assert.match(await text('listing'), /Dockerfile/, 'a bind mount without a target is at the WORKDIR');
    assert.equal([(await st('test')).uid, (await st('owned')).uid, (await st('owned')).gid], [0, 0, 0], 'unknown user names are 0:0');
    assert.ok((await st('dst')).isSymbolicLink(), 'COPY onto a link keeps it');
    assert.is(await text('nowhere/file'), 'f\n', 'and writes where it points');
    assert.is(await text('parents/c/d/e'), 'e\n', 'the ./ pivot after a wildcard');
    assert.equal([(await st('opt/pkg/bin/tool')).uid, (await st('opt/pkg/bin/tool')).gid], [1000, 10], 'ADD --chown owns extracted entries');
    assert.is(await text('onbuild'), 'from-onbuild\n', 'an ONBUILD heredoc runs in the child');
    assert.is(await text('from-cache'), 'cached\n');
    for (const d of outs) assert.equal(mountsUnder(d), []);
  } finally {
    await rm(shared, { recursive: true, force: true });
  }
});

test.run();

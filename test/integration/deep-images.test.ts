import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useBuildRoot } from '../helpers/build-root.js';
import { tsbuildOk, tsbuildWithoutSysAdmin, type CliResult } from '../helpers/cli.js';
import { withBuildUser } from '../helpers/build-user.js';
import { makeBusyboxRootfs } from '../helpers/busybox-rootfs.js';
import { tool } from '../helpers/run-tool.js';

/**
 * Issue 10, scope 4: images deeper than mount(2)'s option page allows (~137 layers; BuildKit
 * stops at 128, Docker at 125) build and run, with the new mount API's `lowerdir+`, in every
 * isolation mode that mounts overlayfs.
 */
const test = suite('integration: images deeper than 137 layers');
const env = useBuildRoot(test, 'deep');

/** Above mount(2)'s ~137, kept low enough for CI time. */
const LAYERS = 150;

/** FROM busybox, one COPY per layer, then a RUN that reads the first and last file. */
function deepContext(files: Record<string, string>): string {
  const lines = ['FROM busybox'];
  for (let i = 0; i < LAYERS; i++) {
    files[`f${i}`] = `${i}\n`;
    lines.push(`COPY f${i} /deep/f${i}`);
  }
  lines.push(`RUN cat /deep/f0 /deep/f${LAYERS - 1} > /ends && ls /deep | wc -l > /count`);
  return `${lines.join('\n')}\n`;
}

test(`${LAYERS} COPY layers and a RUN on top: the RUN sees them all, umoci reads the image`, async () => {
  const files: Record<string, string> = {};
  const ctx = await env.context(deepContext(files), files);
  const out = join(env.work, 'deep-layout');
  await tsbuildOk(['--root', env.root, 'build', '--output', `type=oci,dest=${out},tar=false`, '-t', 'deep', ctx]);
  const bundle = join(env.work, 'deep-bundle');
  await tool('skopeo', ['copy', `oci:${out}`, `oci:${out}:deep`]);
  await tool('umoci', ['unpack', '--image', `${out}:deep`, bundle]);
  assert.is(await readFile(join(bundle, 'rootfs/ends'), 'utf8'), `0\n${LAYERS - 1}\n`);
  assert.is((await readFile(join(bundle, 'rootfs/count'), 'utf8')).trim(), String(LAYERS));
  const manifest = JSON.parse(await tool('skopeo', ['inspect', '--raw', `oci:${out}:deep`])) as { layers: unknown[] };
  assert.ok(manifest.layers.length > LAYERS, `${manifest.layers.length} layers`);
  await rm(bundle, { recursive: true, force: true });
  // `tsbuild run` mounts the whole stack too.
  const r = await tsbuildOk(['--root', env.root, 'run', 'deep', '--', 'cat', `/deep/f${LAYERS - 1}`]);
  assert.is(r.stdout, `${LAYERS - 1}\n`);
});

test('root without CAP_SYS_ADMIN and a user with subordinate ids build the deep image as well', async () => {
  const shared = await mkdtemp(join(tmpdir(), 'tsbuild-deep-modes-'));
  try {
    await chmod(shared, 0o755);
    const ctx = join(shared, 'ctx');
    const files: Record<string, string> = { 'Base.Dockerfile': 'FROM scratch\nCOPY rootfs/ /\n' };
    files.Dockerfile = deepContext(files);
    await tool('mkdir', ['-p', ctx]);
    await makeBusyboxRootfs(join(ctx, 'rootfs'));
    for (const [p, c] of Object.entries(files)) await writeFile(join(ctx, p), c);
    await tool('chmod', ['-R', 'a+rX', ctx]);
    const ok = (r: CliResult, what: string): CliResult => {
      assert.is(r.code, 0, `${what}: ${r.stderr}`);
      return r;
    };
    const root = join(shared, 'nocap-root');
    ok(await tsbuildWithoutSysAdmin(['--root', root, 'build', '-f', join(ctx, 'Base.Dockerfile'), '-t', 'busybox', ctx]), 'no CAP_SYS_ADMIN: base');
    const nocap = ok(await tsbuildWithoutSysAdmin(['--root', root, 'build', '--progress', 'plain', '-t', 'deep', ctx]), 'no CAP_SYS_ADMIN: deep');
    assert.match(nocap.stderr, /isolation: rootless/);
    await withBuildUser({ subordinateIds: true }, async (user) => {
      ok(await user.tsbuild(['build', '-f', join(ctx, 'Base.Dockerfile'), '-t', 'busybox', ctx]), 'rootless: base');
      ok(await user.tsbuild(['build', '-t', 'deep', ctx]), 'rootless: deep');
      const r = ok(await user.tsbuild(['run', 'deep', '--', 'cat', '/ends']), 'rootless: run');
      assert.is(r.stdout, `0\n${LAYERS - 1}\n`);
    });
  } finally {
    await rm(shared, { recursive: true, force: true });
  }
});

test.run();

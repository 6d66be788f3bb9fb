import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { useBuildRoot } from '../helpers/build-root.js';
import { CLI, tsbuild, tsbuildOk } from '../helpers/cli.js';
import { tool } from '../helpers/run-tool.js';

/**
 * BuildKit's `type=tar` (the root filesystem as one archive) and `dest=-` (an archive on
 * standard output, for pipes such as `| docker load`), read back with GNU tar and skopeo.
 */
const test = suite('integration/output-stdout');
const env = useBuildRoot(test, 'stdout');

const DOCKERFILE = 'FROM busybox\nRUN echo kept > /kept && echo gone > /gone && mkdir -p /d/e && echo deep > /d/e/f\nRUN rm /gone\n';

/** Runs tsbuild with its standard output redirected to `file` by the shell (binary-safe). */
const toFile = (args: readonly string[], file: string) => tool('sh', ['-c', `"${process.execPath}" "${CLI}" "$@" > "${file}"`, 'sh', ...args]);

test('type=tar and -o -: the merged root filesystem (no whiteouts), readable by GNU tar', async () => {
  const ctx = await env.context(DOCKERFILE);
  const file = join(env.work, 'rootfs.tar');
  await tsbuildOk(['--root', env.root, 'build', '--output', `type=tar,dest=${file}`, ctx]);
  const piped = join(env.work, 'piped.tar');
  await toFile(['--root', env.root, 'build', '-o', '-', ctx], piped);
  for (const f of [file, piped]) {
    const names = (await tool('tar', ['-tf', f])).split('\n');
    assert.ok(names.includes('kept') && names.includes('d/e/f') && names.includes('bin/busybox'), names.slice(0, 20).join(' '));
    assert.not.ok(names.includes('gone'), 'a file a later layer removed is not there');
    assert.not.ok(names.some((n) => n.includes('.wh.')), 'no whiteout markers');
    assert.is(await tool('tar', ['-xOf', f, 'd/e/f']), 'deep\n');
  }
  assert.equal(await readFile(piped), await readFile(file), 'same bytes to a file and to a pipe');
});

test('type=docker,dest=- and type=oci,dest=- stream an image archive that skopeo reads', async () => {
  const ctx = await env.context(DOCKERFILE);
  const docker = join(env.work, 'docker.tar');
  await toFile(['--root', env.root, 'build', '-t', 'piped:1', '--output', 'type=docker,dest=-', ctx], docker);
  const d = JSON.parse(await tool('skopeo', ['inspect', `docker-archive:${docker}`])) as { Layers: string[]; RepoTags: string[] };
  assert.is(d.Layers.length, 3);
  const oci = join(env.work, 'oci.tar');
  await toFile(['--root', env.root, 'build', '--output', 'type=oci,dest=-', ctx], oci);
  const o = JSON.parse(await tool('skopeo', ['inspect', `oci-archive:${oci}`])) as { Layers: string[] };
  assert.is(o.Layers.length, 3);
});

test('dest=- with -q, with two outputs on standard output, or of a directory, is a usage error', async () => {
  const ctx = await env.context(DOCKERFILE);
  for (const [args, re] of [
    [['-q', '-o', '-'], /-q prints the image ID to standard output/],
    [['-o', '-', '-o', 'type=docker,dest=-'], /only one output can go to standard output/],
    [['-o', 'type=local,dest=-'], /takes an archive/],
  ] as const) {
    const r = await tsbuild(['--root', env.root, 'build', ...args, ctx]);
    assert.is(r.code, 2, r.stderr);
    assert.match(r.stderr, re);
  }
});

test.run();

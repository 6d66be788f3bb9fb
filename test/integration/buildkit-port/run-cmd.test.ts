/** BuildKit's frontend/dockerfile/dockerfile_cmd_test.go, ported: SHELL/ENTRYPOINT/CMD in the config, RUN command errors. */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { useBuildRoot } from '../../helpers/build-root.js';
import { tsbuild, tsbuildOk } from '../../helpers/cli.js';

const test = suite('buildkit-port: dockerfile_cmd_test.go');
const env = useBuildRoot(test, 'bk-run-cmd');

interface Descriptor {
  mediaType: string;
  digest: string;
  platform?: { os: string; architecture: string; variant?: string };
}
interface ImageConfig {
  config: { Cmd?: string[] | null; Entrypoint?: string[] | null; Env?: string[] | null };
}

let n = 0;
/** Builds into an OCI layout dir; returns a reader of its blobs. */
async function buildLayout(dir: string, extra: string[] = []): Promise<{ json<T>(digest: string): Promise<T>; index: Descriptor[] }> {
  const layout = join(env.work, `layout-${++n}`);
  await tsbuildOk(['--root', env.root, 'build', '-o', `type=oci,dest=${layout},tar=false`, ...extra, dir]);
  const json = async <T>(digest: string): Promise<T> => JSON.parse(await readFile(join(layout, 'blobs/sha256', digest.slice('sha256:'.length)), 'utf8')) as T;
  let index = (JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: Descriptor[] }).manifests;
  if (index.length === 1 && index[0]!.mediaType.endsWith('index.v1+json')) index = (await json<{ manifests: Descriptor[] }>(index[0]!.digest)).manifests;
  return { json, index };
}

test('testCmdShell: SHELL and a shell-form ENTRYPOINT over a base with CMD: the CMD is dropped', async () => {
  await tsbuildOk(['--root', env.root, 'build', '-t', 'docker.io/moby/cmdoverridetest:latest', await env.context('FROM scratch\nCMD ["test"]\n')]);
  const { json, index } = await buildLayout(await env.context('FROM docker.io/moby/cmdoverridetest:latest\nSHELL ["ls"]\nENTRYPOINT my entrypoint\n'));
  const manifest = await json<{ config: Descriptor }>(index[0]!.digest);
  const img = await json<ImageConfig>(manifest.config.digest);
  assert.is(img.config.Cmd ?? null, null);
  assert.equal(img.config.Entrypoint, ['ls', 'my entrypoint']);
});

test('testDefaultShellAndPath: windows and linux from scratch: each its own shell, PATH only on linux', async () => {
  const { json, index } = await buildLayout(await env.context('FROM scratch\nENTRYPOINT foo bar\nCOPY Dockerfile .\n'), ['--platform', 'windows/amd64,linux/amd64']);
  const images = index.filter((d) => d.platform && d.platform.os !== 'unknown');
  assert.is(images.length, 2);
  const expected = [
    { p: 'windows/amd64', entrypoint: ['cmd', '/S', '/C', 'foo bar'], env: null },
    { p: 'linux/amd64', entrypoint: ['/bin/sh', '-c', 'foo bar'], env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'] },
  ];
  for (const [i, exp] of expected.entries()) {
    const d = images[i]!;
    assert.is(`${d.platform!.os}/${d.platform!.architecture}`, exp.p);
    const manifest = await json<{ config: Descriptor; layers: Descriptor[] }>(d.digest);
    assert.is(manifest.layers.length, 1);
    const img = await json<ImageConfig>(manifest.config.digest);
    assert.equal(img.config.Entrypoint, exp.entrypoint);
    assert.equal(img.config.Env ?? null, exp.env);
  }
});

test('testIgnoreEntrypoint: RUN does not go through the ENTRYPOINT', async () => {
  await tsbuildOk(['--root', env.root, 'build', await env.context('FROM busybox\nENTRYPOINT ["/nosuchcmd"]\nRUN ["ls"]\n')]);
});

test('testInvalidJSONCommands: a JSON array followed by text is shell form', async () => {
  const r = await tsbuild(['--root', env.root, 'build', await env.context('FROM busybox\nRUN ["echo", "hello"]this is invalid\n')]);
  assert.is(r.code, 1);
  assert.match(r.stderr, 'this is invalid');
  const { json, index } = await buildLayout(await env.context('FROM busybox\nENTRYPOINT []random string\n'));
  const manifest = await json<{ config: Descriptor }>(index[0]!.digest);
  assert.equal((await json<ImageConfig>(manifest.config.digest)).config.Entrypoint, ['/bin/sh', '-c', '[]random string']);
});

test('testDockerfileInvalidCommand: a failing RUN names its command and "did not complete successfully"', async () => {
  const r = await tsbuild(['--root', env.root, 'build', '--progress', 'plain', await env.context('\tFROM busybox\n\tRUN invalidcmd\n')]);
  assert.is(r.code, 1);
  assert.match(r.stderr, '/bin/sh -c invalidcmd');
  assert.match(r.stderr, 'did not complete successfully');
  assert.match(r.stderr, /Dockerfile:2/);
});

test('testDockerfileInvalidInstruction: an unknown instruction, with its did-you-mean', async () => {
  const r = await tsbuild(['--root', env.root, 'build', await env.context('FROM scratch\nFNTRYPOINT ["/bin/sh", "-c", "echo invalidinstruction"]\n')]);
  assert.is(r.code, 1);
  assert.match(r.stderr, 'unknown instruction: FNTRYPOINT');
  assert.match(r.stderr, 'did you mean ENTRYPOINT?');
});

test.run();

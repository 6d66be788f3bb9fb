import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { useBuildRoot } from '../helpers/build-root.js';
import { tsbuild } from '../helpers/cli.js';

/** Bad input fails with exit 1 and a message naming the file and line, and leaves the store as it was. */
const test = suite('integration: bad input');
const env = useBuildRoot(test, 'bad');
let indexBefore = '';

test.before.each(async () => {
  indexBefore = await readFile(join(env.root, 'store/index.json'), 'utf8');
});
test.after.each(async () => {
  assert.is(await readFile(join(env.root, 'store/index.json'), 'utf8'), indexBefore, 'no tag added or lost');
});

async function fails(dir: string, pattern: RegExp, extra: string[] = []): Promise<string> {
  const r = await tsbuild(['--root', env.root, 'build', '-t', 'should-not-exist', ...extra, dir]);
  assert.is(r.code, 1, `exit code 1, got ${r.code}: ${r.stderr}`);
  assert.match(r.stderr, pattern);
  assert.not.match(r.stderr, /\n\s+at .+\(.*\.js:\d+:\d+\)/, 'no stack trace without --debug');
  return r.stderr;
}

test('missing Dockerfile', async () => {
  const dir = await env.context(undefined);
  await fails(dir, /failed to read Dockerfile .*Dockerfile: no such file/);
});

test('--debug prints the stack trace, naming src/*.ts lines through the bundle\'s source maps', async () => {
  const dir = await env.context(undefined);
  const r = await tsbuild(['--root', env.root, '--debug', 'build', '-t', 'should-not-exist', dir]);
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /failed to read Dockerfile/);
  assert.match(r.stderr, /\n\s+at readDockerfile \(.*\/src\/orchestrator\/read-dockerfile\.ts:\d+:\d+\)/);
});

test('unknown instruction names its line', async () => {
  const dir = await env.context('FROM busybox\nRUN true\nFOO bar\n');
  const err = await fails(dir, /Dockerfile:3: unknown instruction: FOO/i);
  assert.match(err, />>> +3 \| FOO bar/);
});

test('missing COPY source', async () => {
  const dir = await env.context('FROM busybox\n\nCOPY nothere.txt /x\n');
  await fails(dir, /Dockerfile:3: .*"\/nothere.txt": not found/);
});

test('COPY source excluded by .dockerignore is missing', async () => {
  const dir = await env.context('FROM busybox\nCOPY secret.txt /x\n', { 'secret.txt': 's', '.dockerignore': 'secret.txt\n' });
  await fails(dir, /Dockerfile:2: .*"\/secret.txt": not found/);
});

test('COPY source escaping the context with ..', async () => {
  const dir = await env.context('FROM busybox\nCOPY ../outside /x\n');
  await writeFile(join(env.work, 'outside'), 'x');
  await fails(dir, /Dockerfile:2: COPY source "..\/outside" is outside the build context/);
});

test('COPY source that is a symlink pointing outside the context', async () => {
  const dir = await env.context('FROM busybox\nCOPY link /x\n');
  await symlink('/etc/passwd', join(dir, 'link'));
  await fails(dir, /Dockerfile:2: COPY source "link" is a symlink that points outside the build context/);
});

test('failing RUN reports the command, exit code and output, and keeps earlier layers consistent', async () => {
  const dir = await env.context('FROM busybox\nRUN echo kept > /kept\nRUN echo oops >&2 && false\n');
  const err = await fails(dir, /Dockerfile:3: process "\/bin\/sh -c echo oops >&2 && false" did not complete successfully: exit code: 1/);
  assert.match(err, /oops/);
});

test('unknown --target names the stages', async () => {
  const dir = await env.context('FROM busybox AS build\nRUN true\n');
  await fails(dir, /target stage "?biuld"? could not be found/i, ['--target', 'biuld']);
});

test('unknown base image', async () => {
  const dir = await env.context('FROM no-such-image:1\n');
  await fails(dir, /Dockerfile:1: image no-such-image:1 .*not found/);
});

test('bad usage exits 2', async () => {
  const r = await tsbuild(['--root', env.root, 'build', '--output', 'type=bogus', env.work]);
  assert.is(r.code, 2);
  assert.match(r.stderr, /--output "type=bogus"/);
  const r2 = await tsbuild(['--root', env.root, 'build', '--no-such-flag', env.work]);
  assert.is(r2.code, 2);
  assert.match(r2.stderr, /unknown option '--no-such-flag'/);
});

test.run();

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { mkdir, readFile, writeFile, lstat } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { useBuildRoot } from '../helpers/build-root.js';
import { CLI, tsbuildOk } from '../helpers/cli.js';
import { tool } from '../helpers/run-tool.js';

const test = suite('integration: ADD archives, 100+ layers, interrupts');
const env = useBuildRoot(test, 'lay');

test('ADD extracts local tar archives (gzip, bzip2, xz, plain) and copies other files as they are', async () => {
  const ctx = await env.context(undefined);
  const payload = join(env.work, 'payload');
  await mkdir(join(payload, 'dir'), { recursive: true });
  await writeFile(join(payload, 'dir/file.txt'), 'inside\n');
  for (const [name, flag] of [['a.tar.gz', '-z'], ['b.tar.bz2', '-j'], ['c.tar.xz', '-J'], ['d.tar', '']] as const) {
    await tool('tar', ['-C', payload, ...(flag ? [flag] : []), '-cf', join(ctx, name), 'dir']);
  }
  await writeFile(join(ctx, 'note.txt.gz'), gzipSync('not a tar\n'));
  await writeFile(
    join(ctx, 'Dockerfile'),
    'FROM busybox\nADD a.tar.gz /gz/\nADD b.tar.bz2 /bz2\nADD c.tar.xz /xz/\nADD d.tar /plain/\nADD note.txt.gz /notes/\nCOPY a.tar.gz /copied/\n',
  );
  const out = join(env.work, 'add-out');
  await tsbuildOk(['--root', env.root, 'build', '--output', `type=local,dest=${out}`, ctx]);
  for (const d of ['gz', 'bz2', 'xz', 'plain']) assert.is(await readFile(join(out, d, 'dir/file.txt'), 'utf8'), 'inside\n', `ADD extracts into /${d}`);
  assert.ok((await lstat(join(out, 'notes/note.txt.gz'))).isFile(), 'a gzip file that is not a tar is copied, not extracted');
  assert.ok((await lstat(join(out, 'copied/a.tar.gz'))).isFile(), 'COPY never extracts');
});

test('an image with more than 100 layers builds, and every RUN sees all layers below it', async () => {
  const ctx = await env.context(undefined);
  const runs = Array.from({ length: 105 }, (_, i) => `RUN echo ${i} > /layer-${i}`);
  await writeFile(join(ctx, 'Dockerfile'), ['FROM busybox', ...runs, 'RUN ls / | grep -c "^layer-" > /count', ''].join('\n'));
  const tarPath = join(env.work, 'many.tar');
  await tsbuildOk(['--root', env.root, 'build', '-t', 'many', '--output', `type=oci,dest=${tarPath}`, ctx]);
  const inspected = JSON.parse(await tool('skopeo', ['inspect', `oci-archive:${tarPath}:latest`]));
  assert.is(inspected.Layers.length, 107);
  const child = await env.context(undefined);
  await writeFile(join(child, 'Dockerfile'), 'FROM many\nRUN cat /count /layer-0 /layer-104 > /summary\n');
  const out = join(env.work, 'many-out');
  await tsbuildOk(['--root', env.root, 'build', '--output', `type=local,dest=${out}`, child]);
  assert.is(await readFile(join(out, 'summary'), 'utf8'), '105\n0\n104\n');
});

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  test(`${signal} during a RUN kills the container, unmounts, exits 130 and leaves the store consistent`, async () => {
    const ctx = await env.context(undefined);
    await writeFile(join(ctx, 'Dockerfile'), 'FROM busybox\nRUN echo started && sleep 60\n');
    const child = spawn(process.execPath, [CLI, '--root', env.root, 'build', '-t', `interrupted-${signal.toLowerCase()}`, '--progress', 'plain', ctx], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    const sawStart = new Promise<void>((resolve) =>
      child.stderr.on('data', (b) => {
        stderr += b;
        if (stderr.includes('started')) resolve();
      }),
    );
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    await Promise.race([sawStart, exited]);
    assert.ok(stderr.includes('started'), `the RUN started before the signal: ${stderr}`);
    const t0 = Date.now();
    child.kill(signal);
    const code = await exited;
    assert.is(code, 130, stderr);
    assert.ok(Date.now() - t0 < 10_000, 'stops promptly instead of waiting for the sleep');
    const index = await readFile(join(env.root, 'store/index.json'), 'utf8');
    assert.not.ok(index.includes(`interrupted-${signal.toLowerCase()}`));
    assert.match(stderr, /interrupted/);
  });
}

test.run();

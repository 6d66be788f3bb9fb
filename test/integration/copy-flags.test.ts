/**
 * COPY/ADD flags (issue 02 §6) as real builds: --exclude (from a stage, on a single file),
 * --parents, symbolic --chmod, --link. Results are checked on the local export. BuildKit's own
 * copy/exclude-patterns and copy/chmod cases run with all the others in test/conformance/build-cases.test.ts.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { useBuildRoot } from '../helpers/build-root.js';
import { tsbuild, tsbuildOk } from '../helpers/cli.js';

const test = suite('integration: COPY/ADD flags');
const env = useBuildRoot(test, 'copy-flags');

async function build(ctx: string, name: string, buildArgs: Record<string, string> = {}): Promise<string> {
  const out = join(env.work, `${name}-out`);
  const args = Object.entries(buildArgs).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`]);
  await tsbuildOk(['--root', env.root, 'build', ...args, '--output', `type=local,dest=${out}`, ctx]);
  return out;
}

test('--exclude with --from a stage and on a single file source', async () => {
  const ctx = await env.context(
    [
      'FROM busybox AS src',
      'RUN mkdir -p /d/sub && echo k > /d/keep.c && echo o > /d/drop.o && echo s > /d/sub/x.o',
      'FROM scratch',
      'COPY --from=src --exclude=*.o /d /out/',
      'COPY --exclude=*.md README.md notes.txt /docs/',
    ].join('\n'),
    { 'README.md': 'readme', 'notes.txt': 'notes' },
  );
  const out = await build(ctx, 'exclude-stage');
  assert.is(readFileSync(join(out, 'out/keep.c'), 'utf8'), 'k\n');
  assert.not.ok(existsSync(join(out, 'out/drop.o')));
  assert.ok(existsSync(join(out, 'out/sub/x.o')), '*.o matches the top level only, as in BuildKit');
  assert.not.ok(existsSync(join(out, 'docs/README.md')));
  assert.is(readFileSync(join(out, 'docs/notes.txt'), 'utf8'), 'notes');
});

test('--parents keeps each source\'s path under the destination', async () => {
  const ctx = await env.context(['FROM scratch', 'COPY --parents a/b/c.txt x/*.txt /dst/', 'COPY --parents dir /tree/', 'COPY --parents ./a/./b/c.txt /pivot/'].join('\n'), {
    'a/b/c.txt': 'c',
    'x/1.txt': '1',
    'x/2.txt': '2',
    'dir/in/f': 'f',
  });
  const out = await build(ctx, 'parents');
  assert.is(readFileSync(join(out, 'dst/a/b/c.txt'), 'utf8'), 'c');
  assert.is(readFileSync(join(out, 'dst/x/1.txt'), 'utf8'), '1');
  assert.is(readFileSync(join(out, 'dst/x/2.txt'), 'utf8'), '2');
  assert.is(readFileSync(join(out, 'tree/dir/in/f'), 'utf8'), 'f');
  assert.is(readFileSync(join(out, 'pivot/b/c.txt'), 'utf8'), 'c', 'a /./ pivot keeps only what follows it');
});

test('symbolic --chmod: u=rwx,go=rx, +x, X on directories only, go-w', async () => {
  const ctx = await env.context(
    ['FROM scratch', 'COPY --chmod=u=rwx,go=rx a /a', 'COPY --chmod=+x b /b', 'COPY --chmod=a+X d /d', 'COPY --chmod=go-w w /w', 'COPY --chmod=u+s,g=u b /s'].join('\n'),
    { a: 'a', b: 'b', 'd/sub/f': 'f', w: 'w' },
  );
  await chmod(join(ctx, 'a'), 0o600);
  await chmod(join(ctx, 'b'), 0o644);
  await chmod(join(ctx, 'd/sub'), 0o700);
  await chmod(join(ctx, 'd/sub/f'), 0o600);
  await chmod(join(ctx, 'w'), 0o666);
  const out = await build(ctx, 'chmod');
  const mode = (p: string): number => statSync(join(out, p)).mode & 0o7777;
  assert.is(mode('a'), 0o755);
  assert.is(mode('b'), 0o755);
  assert.is(mode('d/sub'), 0o711);
  assert.is(mode('d/sub/f'), 0o600, 'X adds x only to directories and already-executable files');
  assert.is(mode('w'), 0o644);
  assert.is(mode('s'), 0o4664);
});

test('--link: the copy is a layer of its own, reused when the base changes', async () => {
  const df = (v: string): string => ['FROM busybox AS base', `RUN echo ${v} > /basefile`, 'FROM base', 'WORKDIR /app', 'COPY --link app.txt sub/', 'RUN cat /app/sub/app.txt /basefile > /both'].join('\n');
  const ctx = await env.context(df('v1'), { 'app.txt': 'app\n' });
  const layers = async (): Promise<string[]> => JSON.parse((await tsbuildOk(['--root', env.root, 'inspect', 'link-img'])).stdout).Manifest.layers.map((l: { digest: string }) => l.digest);
  const out1 = join(env.work, 'link-1');
  await tsbuildOk(['--root', env.root, 'build', '-t', 'link-img', '--output', `type=local,dest=${out1}`, ctx]);
  assert.is(readFileSync(join(out1, 'both'), 'utf8'), 'app\nv1\n');
  const first = await layers();
  await writeFile(join(ctx, 'Dockerfile'), df('v2'));
  const out2 = join(env.work, 'link-2');
  const r = await tsbuildOk(['--root', env.root, 'build', '--progress', 'plain', '-t', 'link-img', '--output', `type=local,dest=${out2}`, ctx]);
  assert.is(readFileSync(join(out2, 'both'), 'utf8'), 'app\nv2\n');
  const second = await layers();
  assert.is(second.length, first.length);
  // busybox, RUN (changed), WORKDIR's mkdir, COPY --link (same blob), RUN (changed).
  const copyIndex = first.length - 2;
  assert.is(second[copyIndex], first[copyIndex], 'the --link layer is the same blob on the new base');
  assert.is.not(second[copyIndex - 2], first[copyIndex - 2], 'the base layer did change');
  const copyStep = r.stderr.split('\n').find((l) => l.includes('COPY --link'))?.split(' ')[0];
  assert.ok(copyStep && r.stderr.includes(`${copyStep} CACHED`), `the copy was cached:\n${r.stderr}`);
});

test('--link --chown=NAME: names come from the stage below; only its passwd/group content counts for the cache', async () => {
  // busybox-static's base has no adduser applet: users are appended by hand.
  const df = (v: string, uid = '4321') =>
    ['FROM busybox', `RUN echo 'linkuser:x:${uid}:${uid}::/:/bin/sh' >> /etc/passwd && echo 'linkgroup:x:${uid}:' >> /etc/group`, `RUN echo ${v} > /v`, 'COPY --link --chown=linkuser:linkgroup f /f', 'RUN stat -c %u:%g /f > /owner'].join('\n');
  const ctx = await env.context(df('v1'), { f: 'data' });
  const build = async () => {
    const out = join(env.work, `chown-link-${Date.now()}`);
    const r = await tsbuildOk(['--root', env.root, 'build', '--progress', 'rawjson', '--output', `type=local,dest=${out}`, ctx]);
    const cachedCopies = r.stderr.split('\n').filter((l) => l.includes('"vertex.cached"') && l.includes('COPY --link')).length;
    return { owner: readFileSync(join(out, 'owner'), 'utf8'), cachedCopies };
  };
  assert.is((await build()).owner, '4321:4321\n');
  await writeFile(join(ctx, 'Dockerfile'), df('v2'));
  const again = await build();
  assert.is(again.owner, '4321:4321\n');
  assert.is(again.cachedCopies, 1, 'the copy on scratch is reused: the parent changed, its passwd/group did not');
  await writeFile(join(ctx, 'Dockerfile'), df('v2', '999'));
  const moved = await build();
  assert.is(moved.owner, '999:999\n', 'a changed passwd entry is never a stale hit');
  assert.is(moved.cachedCopies, 0);
});

test('an invalid symbolic --chmod names the line', async () => {
  const ctx = await env.context(['FROM scratch', 'COPY --chmod=u=rwq a /a'].join('\n'), { a: 'a' });
  const r = await tsbuild(['--root', env.root, 'build', ctx]);
  assert.is(r.code, 1);
  assert.match(r.stderr, "invalid chmod parameter: 'u=rwq'");
  assert.match(r.stderr, 'Dockerfile:2');
});

test.run();

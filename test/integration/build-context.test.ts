/**
 * `--build-context` (issue 02 §9) and ONBUILD from an image (§7), as real builds: a directory
 * context in COPY --from, FROM and RUN --mount from=; `docker-image://` replacing a FROM name;
 * `oci-layout://DIR[:TAG]` from a layout tsbuild exported; ONBUILD triggers of a stored parent
 * image run in order in the child and are not inherited.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { useBuildRoot } from '../helpers/build-root.js';
import { tsbuild, tsbuildOk } from '../helpers/cli.js';

const test = suite('integration: --build-context and ONBUILD');
const env = useBuildRoot(test, 'build-context');

async function build(ctx: string, name: string, extra: readonly string[] = []): Promise<{ out: string; stderr: string }> {
  const out = join(env.work, `${name}-out`);
  const r = await tsbuildOk(['--root', env.root, 'build', '--progress', 'plain', ...extra, '--output', `type=local,dest=${out}`, ctx]);
  return { out, stderr: r.stderr };
}
const read = (p: string): string => readFileSync(p, 'utf8').trim();

test('a directory context in COPY --from, FROM, and RUN --mount from=; its files are keyed', async () => {
  const extra = await mkdtemp(join(env.work, 'extra-'));
  await writeFile(join(extra, 'file'), 'extra-1\n');
  const ctx = await env.context(
    [
      'FROM extra AS e',
      'FROM busybox',
      'COPY --from=extra file /copied',
      'COPY --from=e /file /from-base',
      'RUN --mount=type=bind,from=extra,target=/x cat /x/file > /mounted',
    ].join('\n'),
  );
  const first = await build(ctx, 'dir-1', ['--build-context', `extra=${extra}`]);
  assert.is(read(join(first.out, 'copied')), 'extra-1');
  assert.is(read(join(first.out, 'from-base')), 'extra-1');
  assert.is(read(join(first.out, 'mounted')), 'extra-1');
  await writeFile(join(extra, 'file'), 'extra-2\n');
  const second = await build(ctx, 'dir-2', ['--build-context', `extra=${extra}`]);
  assert.is(read(join(second.out, 'copied')), 'extra-2');
  assert.is(read(join(second.out, 'mounted')), 'extra-2', 'a changed named context reruns what uses it');
});

test('docker-image:// replaces a FROM name; oci-layout://DIR[:TAG] from an exported layout', async () => {
  const parent = await env.context(['FROM busybox', 'RUN echo in-layout > /marker'].join('\n'));
  const layout = join(env.work, 'layout');
  await tsbuildOk(['--root', env.root, 'build', '-t', 'layout-img:v1', '--output', `type=oci,dest=${layout},tar=false`, parent]);
  const ctx = await env.context(['FROM upstream', 'RUN cat /marker > /seen', 'FROM alias-of-busybox AS b', 'RUN echo b > /b', 'FROM upstream', 'COPY --from=b /b /b', 'RUN cat /marker > /seen'].join('\n'));
  const { out } = await build(ctx, 'layout', ['--build-context', `upstream=oci-layout://${layout}:v1`, '--build-context', 'alias-of-busybox=docker-image://busybox']);
  assert.is(read(join(out, 'seen')), 'in-layout');
  assert.is(read(join(out, 'b')), 'b');
  const untagged = await build(await env.context(['FROM upstream', 'RUN cat /marker > /seen'].join('\n')), 'layout-untagged', ['--build-context', `upstream=oci-layout://${layout}`]);
  assert.is(read(join(untagged.out, 'seen')), 'in-layout', 'a layout holding one image needs no tag');
});

test('bad --build-context values are usage errors naming the flag', async () => {
  const ctx = await env.context('FROM busybox\n');
  const missing = await tsbuild(['--root', env.root, 'build', '--build-context', `x=${join(env.work, 'nope')}`, ctx]);
  assert.is(missing.code, 2);
  assert.match(missing.stderr, '--build-context x=');
  const noTag = await tsbuild(['--root', env.root, 'build', '--build-context', `x=oci-layout://${join(env.work, 'layout')}:nosuchtag`, ctx]);
  assert.is(noTag.code, 2);
  assert.match(noTag.stderr, 'no image tagged "nosuchtag"');
  const syntax = await tsbuild(['--root', env.root, 'build', '--build-context', 'novalue', ctx]);
  assert.is(syntax.code, 2);
});

test('ONBUILD triggers of a stored image run in order at the start of the child stage', async () => {
  const parent = await env.context(
    ['FROM busybox', 'ONBUILD RUN echo first >> /order', 'ONBUILD COPY child.txt /child.txt', 'ONBUILD RUN echo second >> /order && cat /child.txt >> /order'].join('\n'),
  );
  await tsbuildOk(['--root', env.root, 'build', '-t', 'onbuild-parent', parent]);
  const child = await env.context(['FROM onbuild-parent', 'RUN echo own >> /order'].join('\n'), { 'child.txt': 'from-child-context\n' });
  const out = join(env.work, 'onbuild-out');
  await tsbuildOk(['--root', env.root, 'build', '-t', 'onbuild-child', '--output', `type=local,dest=${out}`, child]);
  assert.is(read(join(out, 'order')), 'first\nsecond\nfrom-child-context\nown');
  const insp = JSON.parse((await tsbuildOk(['--root', env.root, 'inspect', 'onbuild-child'])).stdout);
  const one = Array.isArray(insp) ? insp[0] : insp;
  assert.is(one.Config.config.OnBuild, undefined, 'triggers are consumed, not inherited');
  assert.not.ok(existsSync(join(out, 'onbuild-parent')));
});

test.run();

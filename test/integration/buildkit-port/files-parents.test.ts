import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { useBuildRoot } from '../../helpers/build-root.js';
import { tsbuild } from '../../helpers/cli.js';
import { exists, localOut } from './files-helpers.js';

/** Ports of BuildKit's frontend/dockerfile/dockerfile_parents_test.go (COPY --parents). */
const test = suite('buildkit-port: files / COPY --parents');
const env = useBuildRoot(test, 'bk-files-parents');

test('testCopyParents: --parents keeps the source path below the destination', async () => {
  const dir = await env.context('FROM scratch\nCOPY --parents foo1/foo2/bar /\n\nWORKDIR /test\nCOPY --parents foo1/foo2/ba* .\n', {
    'foo1/foo2/bar': 'testing',
    'foo1/foo2/baz': 'testing2',
  });
  const out = await localOut(env, dir);
  assert.is(await readFile(join(out, 'foo1/foo2/bar'), 'utf8'), 'testing');
  assert.is(await readFile(join(out, 'test/foo1/foo2/bar'), 'utf8'), 'testing');
  assert.is(await readFile(join(out, 'test/foo1/foo2/baz'), 'utf8'), 'testing2');
});

const BASE = `FROM busybox AS base
WORKDIR /test
RUN mkdir -p a/b/c/d/e a/b2/c/d/e a/b/c2/d/e a/b/c2/d/e2 && touch a/b/c/d/foo a/b/c/d/e/bay a/b2/c/d/e/bar a/b/c2/d/e/baz a/b/c2/d/e2/baz
`;

// Each stage's expectations as the Go test's shell checks; the stage's /out is exported and checked here.
const RELATIVE: Record<string, { copy: string; present: string[]; absent?: string[] }> = {
  middle: { copy: '/test/a/b/./c/d', present: ['c/d/e/', 'c/d/foo'], absent: ['a', 'e'] },
  end: { copy: '/test/a/b/c/d/.', present: ['test/a/b/c/d/e/', 'test/a/b/c/d/foo'] },
  start: { copy: './test/a/b/c/d', present: ['test/a/b/c/d/e/', 'test/a/b/c/d/foo'] },
  double: { copy: '/test/a/./b/./c', present: ['b/c/d/e/', 'b/c/d/foo'] },
  wildcard: { copy: '/test/a/./*/c', present: ['b/c/d/e/', 'b2/c/d/e/bar'] },
  doublewildcard: { copy: '/test/a/b*/./c/**/e', present: ['c/d/e/', 'c/d/e/bay', 'c/d/e/bar'] },
  doubleinputs: { copy: '/test/a/b/c*/./d/**/baz /test/a/b*/./c/**/bar', present: ['d/e/baz', 'd/e2/baz', 'c/d/e/bar'], absent: ['d/e/bay'] },
};

test('testCopyRelativeParents: ./ pivots, also after wildcards and **', async () => {
  let df = BASE;
  for (const [name, c] of Object.entries(RELATIVE)) df += `\nFROM scratch AS ${name}\nCOPY --from=base --parents ${c.copy} /out/\n`;
  const dir = await env.context(df);
  for (const [name, c] of Object.entries(RELATIVE)) {
    const out = await localOut(env, dir, ['--target', name]);
    for (const p of c.present) {
      const st = await stat(join(out, 'out', p)).catch(() => undefined);
      assert.ok(st && (p.endsWith('/') ? st.isDirectory() : st.isFile()), `${name}: /out/${p} exists`);
    }
    for (const p of c.absent ?? []) assert.not.ok(await exists(join(out, 'out', p)), `${name}: /out/${p} absent`);
  }
});

test('testCopyParentsMissingDirectory: a missing path fails, a wildcard matching nothing copies nothing', async () => {
  const dir = await env.context(`FROM busybox AS base
WORKDIR /test
RUN mkdir -p a/b/c/d/e && touch a/b/c/d/foo a/b/c/d/e/bay

FROM scratch AS normal
COPY --from=base --parents /test/a/b/c/d /out/

FROM scratch AS withpivot
COPY --from=base --parents /test/a/b/./c/d /out/

FROM scratch AS nonexistentfile
COPY --from=base --parents /test/nonexistent-file /out/

FROM scratch AS wildcard-nonexistent
COPY --from=base --parents /test/a/b2*/c /out/

FROM scratch AS wildcard-afterpivot
COPY --from=base --parents /test/a/b/./c2* /out/
`);
  let out = await localOut(env, dir, ['--target', 'normal']);
  assert.ok(await exists(join(out, 'out/test/a/b/c/d/e/bay')));
  assert.not.ok(await exists(join(out, 'out/e')));
  assert.not.ok(await exists(join(out, 'out/a')));
  out = await localOut(env, dir, ['--target', 'withpivot']);
  assert.ok(await exists(join(out, 'out/c/d/foo')));
  assert.not.ok(await exists(join(out, 'out/a')));
  assert.not.ok(await exists(join(out, 'out/e')));
  const r = await tsbuild(['--root', env.root, 'build', '--target', 'nonexistentfile', dir]);
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /"\/test\/nonexistent-file": not found/);
  assert.match(r.stderr, /Dockerfile:12/);
  // The Go test builds these without error; its shell checks: /out exists, nothing else copied.
  out = await localOut(env, dir, ['--target', 'wildcard-nonexistent']);
  assert.ok((await stat(join(out, 'out'))).isDirectory());
  assert.not.ok(await exists(join(out, 'out/a')));
  out = await localOut(env, dir, ['--target', 'wildcard-afterpivot']);
  assert.ok((await stat(join(out, 'out'))).isDirectory());
  assert.not.ok(await exists(join(out, 'out/a')));
  assert.not.ok(await exists(join(out, 'out/c2')));
});

test.run();

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expandSources } from '../../../src/solver/ops/copy-sources.js';

const test = suite('solver/copy-sources');
let dir = '';
test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tsbuild-sources-'));
});
test.after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('a wildcard in a stage rootfs walks symlinked directories inside the rootfs, never on the host', async () => {
  const root = join(dir, 'rootfs');
  await mkdir(join(root, 'usr', 'etc'), { recursive: true });
  await writeFile(join(root, 'usr', 'etc', 'passwd'), 'root:x:0:0::/:/bin/sh\n');
  // Absolute, as images have it: on the host it would point at the host's /usr/etc.
  await symlink('/usr/etc', join(root, 'etc'));
  const found = await expandSources({ root, kind: 'rootfs' }, ['etc/passw[d]', 'etc/grou[p]'], true);
  assert.equal(found, [{ rel: 'etc/passwd', abs: join(root, 'usr', 'etc', 'passwd') }]);
});

test('a wildcard in the context matches as before', async () => {
  const ctx = join(dir, 'ctx');
  await mkdir(join(ctx, 'src'), { recursive: true });
  for (const f of ['a.txt', 'b.txt', 'c.md']) await writeFile(join(ctx, 'src', f), f);
  const found = await expandSources({ root: ctx, kind: 'context' }, ['src/*.txt'], true);
  assert.equal(found.map((m) => m.rel), ['src/a.txt', 'src/b.txt']);
});

test.run();

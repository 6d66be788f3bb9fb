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
  const inside = join('opt', `tsbuild-sources-${process.pid}`, 'etc');
  await mkdir(join(root, inside), { recursive: true });
  await writeFile(join(root, inside, 'passwd'), 'root:x:0:0::/:/bin/sh\n');
  // Absolute, as images have it: read on the host, it would name a directory that is not there.
  await symlink(`/${inside}`, join(root, 'etc'));
  const found = await expandSources({ root, kind: 'rootfs' }, ['etc/passw[d]', 'etc/grou[p]'], true);
  assert.equal(found, [{ rel: 'etc/passwd', abs: join(root, inside, 'passwd') }]);
});

test('a wildcard in the context matches as before', async () => {
  const ctx = join(dir, 'ctx');
  await mkdir(join(ctx, 'src'), { recursive: true });
  for (const f of ['a.txt', 'b.txt', 'c.md']) await writeFile(join(ctx, 'src', f), f);
  const found = await expandSources({ root: ctx, kind: 'context' }, ['src/*.txt'], true);
  assert.equal(found.map((m) => m.rel), ['src/a.txt', 'src/b.txt']);
});

test.run();

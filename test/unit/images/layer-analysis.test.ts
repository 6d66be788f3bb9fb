import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile, link, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LayerAnalysis } from '../../../src/images/layer-analysis.js';
import { layerChanges, type LayerChange } from '../../../src/images/layer-changes.js';
import { cleanCreatedBy } from '../../../src/images/analyze-image.js';

/** The fold of layer changes into analyze's numbers, and reading real layer tars (gzip, zstd, none). */
const test = suite('images/layer-analysis');

const f = (path: string, size: number): LayerChange => ({ kind: 'file', path, size });
const d = (path: string): LayerChange => ({ kind: 'dir', path, size: 0 });

test('added, changed, removed and wasted bytes per layer; efficiency', () => {
  const a = new LayerAnalysis({ markLayer: 2 });
  a.add([d('app'), f('app/a', 100), f('app/b', 50), d('etc'), f('etc/conf', 10)]);
  a.add([d('app'), f('app/a', 120), { kind: 'whiteout', path: 'app/b' }, f('tmp/big', 1000)]);
  a.add([{ kind: 'whiteout', path: 'tmp' }, f('app/a', 120), { kind: 'opaque', path: 'etc' }, f('etc/new', 5)]);
  const r = a.finish(10);
  const pick = (i: number) => {
    const l = r.layers[i]!;
    return [l.files, l.sizeBytes, l.addedFiles, l.addedBytes, l.changedFiles, l.changedBytes, l.removedFiles, l.removedBytes, l.wastedBytes];
  };
  assert.equal(pick(0), [3, 160, 3, 160, 0, 0, 0, 0, 160]);
  assert.equal(pick(1), [2, 1120, 1, 1000, 1, 120, 1, 50, 1120]);
  assert.equal(pick(2), [2, 125, 1, 5, 1, 120, 2, 1010, 0]);
  assert.is(r.totalBytes, 160 + 1120 + 125);
  assert.is(r.wastedBytes, 100 + 50 + 10 + 120 + 1000);
  assert.is(r.efficiency, 1 - 1280 / 1405);
  assert.equal(r.biggestFiles.map((x) => [x.path, x.size, x.layer]), [['/app/a', 120, 2], ['/etc/new', 5, 2]]);
  assert.equal(r.biggestWasted.map((x) => [x.path, x.wastedBytes, x.versions, x.removed]), [
    ['/tmp/big', 1000, 1, true],
    ['/app/a', 220, 3, false],
    ['/app/b', 50, 1, true],
    ['/etc/conf', 10, 1, true],
  ]);
  assert.is(r.inefficientFiles, 4);
  assert.equal(r.marks.map((m) => `${m.mark} ${m.path} ${m.size}`).sort(), ['A etc/new 5', 'D etc/conf 10', 'D tmp/big 1000', 'M app/a 120']);
});

test('a file replacing a directory removes what was under it; an empty image is efficient', () => {
  const a = new LayerAnalysis();
  a.add([f('x/1', 3), f('x/2', 4)]);
  a.add([f('x', 7)]);
  const r = a.finish(5);
  assert.equal([r.layers[1]!.removedFiles, r.layers[1]!.removedBytes, r.layers[1]!.addedFiles, r.wastedBytes], [2, 7, 1, 7]);
  assert.is(new LayerAnalysis().finish(5).efficiency, 1);
});

test('cleanCreatedBy: the step as docker history shows it', () => {
  assert.is(cleanCreatedBy('RUN /bin/sh -c apt-get update # buildkit'), 'RUN apt-get update');
  assert.is(cleanCreatedBy('RUN |2 A=1 B=x /bin/sh -c make # buildkit'), 'RUN make');
  assert.is(cleanCreatedBy('/bin/sh -c #(nop)  CMD ["sh"]'), 'CMD ["sh"]');
  assert.is(cleanCreatedBy('/bin/sh -c make'), 'RUN make');
  assert.is(cleanCreatedBy('COPY a /b # buildkit'), 'COPY a /b');
});

test('layerChanges reads gzip, zstd and uncompressed tars alike; whiteouts, opaque dirs, hardlinks once', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tsbuild-layer-changes-'));
  try {
    const tree = join(dir, 'tree');
    await mkdir(join(tree, 'd/sub'), { recursive: true });
    await writeFile(join(tree, 'd/file'), 'x'.repeat(1234));
    await link(join(tree, 'd/file'), join(tree, 'd/hard'));
    await symlink('file', join(tree, 'd/sym'));
    await writeFile(join(tree, 'd/.wh.gone'), '');
    await writeFile(join(tree, 'd/sub/.wh..wh..opq'), '');
    execFileSync('tar', ['-C', tree, '--sort=name', '-cf', join(dir, 'l.tar'), '.']);
    execFileSync('sh', ['-c', `gzip -c l.tar > l.tar.gz && zstd -q -c l.tar > l.tar.zst`], { cwd: dir });
    const want = [d('d'), { kind: 'whiteout', path: 'd/gone' }, f('d/file', 1234), f('d/hard', 0), d('d/sub'), { kind: 'opaque', path: 'd/sub' }, f('d/sym', 0)];
    for (const name of ['l.tar', 'l.tar.gz', 'l.tar.zst']) {
      const got = await layerChanges(createReadStream(join(dir, name)), new AbortController().signal);
      assert.equal(got, want, name);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();

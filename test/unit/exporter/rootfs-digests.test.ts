import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootfsFileDigests } from '../../../src/exporter/rootfs-digests.js';
import { ImageLayout } from '../../../src/oci/image-layout.js';
import { makeHandMadeImage } from '../../helpers/hand-made-image.js';

const test = suite('unit/exporter/rootfs-digests');
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

test('the files of the flattened rootfs: later layers win, whiteouts and opaque dirs remove, hardlinks share, links are not files', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'rfd-'));
  try {
    const layout = await ImageLayout.open(dir, { create: true });
    const img = await makeHandMadeImage(layout, 'hand:1');
    const files = new Map(await rootfsFileDigests(layout.blobs, img.manifest, new AbortController().signal));
    assert.is(files.get('etc/motd'), sha('hello from layer 2\n'));
    assert.is(files.get('etc/motd.link'), sha('hello from layer 2\n'));
    assert.is(files.get('home/app/private/secret'), sha('top secret\n'));
    assert.is(files.get('var/new'), sha('fresh\n'));
    assert.not.ok(files.has('var/old/file'), 'under the opaque dir');
    assert.not.ok(files.has('etc/group'), 'whited out');
    assert.not.ok(files.has('bin/motd'), 'a symlink is no subject');
    assert.not.ok([...files.keys()].some((k) => k.startsWith('/') || k.startsWith('./') || k.includes('.wh.')));
    const keys = [...files.keys()];
    assert.equal(keys, [...keys].sort(), 'sorted by path');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();

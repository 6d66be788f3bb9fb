import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, utimes, writeFile, link } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContentStore } from '../../../src/oci/content-store.js';
import { createLayerBlob, intoContentStore } from '../../../src/oci/layer/blob.js';
import { clampLayerTimestamps } from '../../../src/oci/layer/clamp-timestamps.js';
import { readTar } from '../../../src/oci/tar/tar-reader.js';
import { decompressStream } from '../../../src/oci/decompress.js';
import { MediaType } from '../../../src/oci/media-types.js';
import { lsetxattr } from '../../../src/oci/native-fs.js';

const test = suite('clampLayerTimestamps');
let tmp = '';
let blobs: ContentStore;
test.before.each(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'tsbuild-clamp-'));
  await mkdir(join(tmp, 'store/blobs/sha256'), { recursive: true });
  await mkdir(join(tmp, 'tmp'));
  blobs = new ContentStore(join(tmp, 'store'), join(tmp, 'tmp'));
});
test.after.each(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** A layer dir with a file, a big file, a dir, a symlink, a hardlink and an xattr, times 1000…1005. */
async function layer(): Promise<{ diffId: string; digest: string; size: number }> {
  const u = join(tmp, 'upper');
  await mkdir(join(u, 'd'), { recursive: true });
  await writeFile(join(u, 'd/f'), 'f\n');
  await writeFile(join(u, 'big'), Buffer.alloc(300_000, 'z'));
  await link(join(u, 'd/f'), join(u, 'hard'));
  await symlink('d/f', join(u, 'l'));
  lsetxattr(join(u, 'big'), 'user.k', Buffer.from([0, 1, 2, 255]));
  let t = 1000;
  for (const p of ['d/f', 'big', 'l', 'd', '.']) {
    const when = t++;
    if (p === 'l') execFileSync('touch', ['-h', '-d', `@${when}`, join(u, p)]);
    else await utimes(join(u, p), when, when);
  }
  return createLayerBlob(u, intoContentStore(blobs));
}

async function times(digest: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for await (const { entry } of readTar(await decompressStream(blobs.openRead(digest as never), new AbortController().signal))) out.set(entry.path, entry.mtime);
  return out;
}

test('an epoch after every time gives back the very same blob: the rewrite changes nothing but times', async () => {
  const l = await layer();
  const same = await clampLayerTimestamps(blobs, { mediaType: MediaType.ociLayer, digest: l.digest as never, size: l.size }, 2000, new AbortController().signal);
  assert.is(same.digest, l.digest);
  assert.is(same.diffId, l.diffId);
});

test('later times are clamped to the epoch, earlier ones kept', async () => {
  const l = await layer();
  const c = await clampLayerTimestamps(blobs, { mediaType: MediaType.ociLayer, digest: l.digest as never, size: l.size }, 1002, new AbortController().signal);
  assert.is.not(c.digest, l.digest);
  const t = await times(c.digest);
  assert.is(t.get('d/f'), 1000);
  assert.is(t.get('big'), 1001);
  assert.is(t.get('l'), 1002);
  assert.is(t.get('d'), 1002, 'was 1003');
  assert.is(t.get('hard'), 1000);
  // The xattr and body survive: the original's entries, re-read, differ only in times.
  const listing = (d: string) => execFileSync('tar', ['--xattrs', '-tvf', join(tmp, 'store/blobs/sha256', d.slice(7))], { encoding: 'utf8' }).replace(/\d{4}-\d\d-\d\d \d\d:\d\d/g, 'T');
  assert.is(listing(c.digest), listing(l.digest));
});

test.run();

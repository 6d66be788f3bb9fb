import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, readdir, rm, stat, truncate, utimes, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ContentStore, cleanupTemp } from '../../../src/oci/content-store.js';
import { sha256, digestHex } from '../../../src/oci/digest.js';
import { BuildError } from '../../../src/errors.js';

const test = suite('ContentStore');
let dir = '';
let store: ContentStore;

test.before.each(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tsbuild-cs-'));
  store = new ContentStore(join(dir, 'layout'), join(dir, 'tmp'));
});
test.after.each(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function blobNames(): Promise<string[]> {
  return readdir(join(dir, 'layout', 'blobs', 'sha256')).catch(() => []);
}
async function tmpNames(): Promise<string[]> {
  return readdir(join(dir, 'tmp')).catch(() => []);
}

test('putBytes stores by digest, idempotently, and readBytes/readJson verify', async () => {
  const data = JSON.stringify({ hello: 'world' });
  const a = await store.putBytes(data);
  const b = await store.putBytes(Buffer.from(data));
  assert.is(a.digest, sha256(data));
  assert.equal(a, b);
  assert.is(a.size, Buffer.byteLength(data));
  assert.ok(await store.has(a.digest));
  assert.equal(await store.stat(a.digest), { size: a.size });
  assert.equal(await store.readJson(a.digest), { hello: 'world' });
  assert.equal(await blobNames(), [digestHex(a.digest)]);
  assert.equal(await tmpNames(), []);
  assert.is(await store.stat(sha256('absent')), undefined);
});

test('readBytes detects a corrupted blob and a missing one', async () => {
  const { digest } = await store.putBytes('original');
  await writeFile(store.path(digest), 'tampered');
  try {
    await store.readBytes(digest);
    assert.unreachable('should fail');
  } catch (e) {
    assert.instance(e, BuildError);
    assert.is((e as BuildError).code, 'STORE_CORRUPT');
  }
  try {
    await store.readBytes(sha256('nothing'));
    assert.unreachable('should fail');
  } catch (e) {
    assert.is((e as BuildError).code, 'STORE_CORRUPT');
  }
});

test('streaming writer: large content in chunks, digest computed on the fly', async () => {
  const chunk = Buffer.alloc(64 * 1024, 7);
  const h = createHash('sha256');
  const chunks: Buffer[] = [];
  for (let i = 0; i < 100; i++) {
    const c = Buffer.from(chunk);
    c[0] = i;
    chunks.push(c);
    h.update(c);
  }
  const w = store.createWriter();
  await pipeline(Readable.from(chunks), w.stream);
  const info = await w.commit();
  assert.is(info.digest, `sha256:${h.digest('hex')}`);
  assert.is(info.size, 100 * chunk.length);
  assert.is((await store.stat(info.digest))?.size, info.size);
  assert.equal(await tmpNames(), []);
});

test('abort mid-write leaves no blob and no temp file', async () => {
  const w = store.createWriter();
  w.stream.write(Buffer.from('partial data'));
  await new Promise((r) => setTimeout(r, 20));
  assert.is((await tmpNames()).length, 1, 'content goes to a temp file while writing');
  assert.equal(await blobNames(), []);
  await w.abort();
  assert.equal(await blobNames(), []);
  assert.equal(await tmpNames(), []);
});

test('wrong expected digest or size: commit fails and nothing is stored', async () => {
  const w = store.createWriter({ digest: sha256('something else') });
  w.stream.end('actual content');
  try {
    await w.commit();
    assert.unreachable('should fail');
  } catch (e) {
    assert.instance(e, BuildError);
    assert.is((e as BuildError).code, 'STORE_CORRUPT');
    assert.match((e as Error).message, /mismatch/);
  }
  const w2 = store.createWriter({ digest: sha256('actual content'), size: 3 });
  w2.stream.end('actual content');
  try {
    await w2.commit();
    assert.unreachable('should fail');
  } catch (e) {
    assert.is((e as BuildError).code, 'STORE_CORRUPT');
  }
  assert.equal(await blobNames(), []);
  assert.equal(await tmpNames(), []);
  const w3 = store.createWriter({ digest: sha256('actual content'), size: 14 });
  w3.stream.end('actual content');
  assert.is((await w3.commit()).digest, sha256('actual content'));
});

test('concurrent writers of the same blob all succeed with one blob', async () => {
  const data = Buffer.alloc(300_000, 'x');
  const results = await Promise.all(
    Array.from({ length: 10 }, async () => {
      const w = store.createWriter({ digest: sha256(data) });
      for (let i = 0; i < data.length; i += 10_000) w.stream.write(data.subarray(i, i + 10_000));
      return w.commit();
    }),
  );
  for (const r of results) assert.is(r.digest, sha256(data));
  assert.equal(await blobNames(), [digestHex(sha256(data))]);
  assert.equal(await tmpNames(), []);
  assert.ok((await store.readBytes(sha256(data))).equals(data));
});

test('a blob stored already is kept, the new copy dropped; a stored one of the wrong size is replaced', async () => {
  const data = Buffer.alloc(200_000, 'y');
  const write = async () => {
    const w = store.createWriter();
    await pipeline(Readable.from([data]), w.stream);
    return w.commit();
  };
  const first = await write();
  const path = store.path(first.digest);
  const inode = (await stat(path)).ino;
  const again = await write();
  assert.is(again.digest, first.digest);
  assert.is((await stat(path)).ino, inode, 'the stored file itself stays: the copy was not renamed over it');
  assert.equal(await tmpNames(), []);
  // A blob of another size under the name is not this content: the copy replaces it.
  await truncate(path, 10);
  await write();
  assert.is((await stat(path)).size, data.length);
  assert.ok((await store.readBytes(first.digest)).equals(data));
  assert.equal(await tmpNames(), []);
});

test('cleanupTemp removes only old blob temp files', async () => {
  const tmp = join(dir, 'tmp');
  const w = store.createWriter();
  w.stream.write('x');
  await new Promise((r) => setTimeout(r, 20));
  const [live] = await tmpNames();
  await writeFile(join(tmp, 'blob-crashed'), 'old');
  await writeFile(join(tmp, 'other-file'), 'not ours');
  const old = new Date(Date.now() - 3_600_000);
  await utimes(join(tmp, 'blob-crashed'), old, old);
  await utimes(join(tmp, 'other-file'), old, old);
  assert.is(await cleanupTemp(tmp, 60_000), 1);
  assert.equal((await tmpNames()).sort(), [live!, 'other-file'].sort());
  await w.abort();
});

test.run();

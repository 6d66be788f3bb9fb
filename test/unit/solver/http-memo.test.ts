import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { digestHex, sha256, type Digest } from '../../../src/oci/digest.js';
import { rootDirs } from '../../../src/root-dirs.js';
import { HttpMemo, httpMemoDir, sweepHttpMemo, type HttpMemoEntry } from '../../../src/solver/http-memo.js';

const test = suite('solver/http-memo');
let dir = '';
test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tsbuild-httpmemo-'));
});
test.after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const L1 = sha256('layer1');
const L2 = sha256('layer2');
const URL_A = 'http://127.0.0.1:1/a.txt';
const URL_B = 'http://127.0.0.1:1/b.txt';
const entry = (url: string, diffId: Digest, extra: Partial<HttpMemoEntry> = {}): HttpMemoEntry => ({ url, etag: '"e1"', diffId, filename: 'a.txt', digest: sha256('bytes'), ...extra });

test('lives under <root>/cache/http, one file per URL named by the sha256 of the URL', async () => {
  assert.is(httpMemoDir(rootDirs('/r')), '/r/cache/http');
  const d = join(dir, 'naming');
  await new HttpMemo(d, async () => true).set(entry(URL_A, L1));
  assert.equal(await readdir(d), [`${digestHex(sha256(URL_A))}.json`]);
});

test('an entry survives a new instance (another build) and is trusted only while its layer is present', async () => {
  const present = new Set<Digest>([L1]);
  const d = join(dir, 'present');
  await new HttpMemo(d, async (l) => present.has(l)).set(entry(URL_A, L1, { lastModified: 'Wed, 05 May 2021 07:08:09 GMT' }));
  const memo = new HttpMemo(d, async (l) => present.has(l));
  assert.equal(await memo.get(URL_A), entry(URL_A, L1, { lastModified: 'Wed, 05 May 2021 07:08:09 GMT' }));
  assert.is(await memo.get(URL_B), undefined, 'another URL has no entry');
  present.delete(L1);
  assert.is(await memo.get(URL_A), undefined, 'its layer is gone');
});

test('damaged, foreign or validator-less entries are ignored, not errors', async () => {
  const d = join(dir, 'damaged');
  const memo = new HttpMemo(d, async () => true);
  await memo.set(entry(URL_A, L1));
  const path = join(d, `${digestHex(sha256(URL_A))}.json`);
  const good = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  for (const bad of ['', '{"version":1,', 'null', '[]', JSON.stringify({ ...good, version: 99 }), JSON.stringify({ ...good, diffId: 'sha256:xyz' }), JSON.stringify({ ...good, url: URL_B }), JSON.stringify({ ...good, etag: 5 }), JSON.stringify({ ...good, etag: undefined })]) {
    await writeFile(path, bad);
    assert.is(await memo.get(URL_A), undefined, bad);
  }
});

test('delete drops the entry; deleting a missing one is fine', async () => {
  const d = join(dir, 'delete');
  const memo = new HttpMemo(d, async () => true);
  await memo.set(entry(URL_A, L1));
  await memo.delete(URL_A);
  await memo.delete(URL_A);
  assert.is(await memo.get(URL_A), undefined);
});

test('sweep removes entries whose layer is gone, damaged ones and temp files; keeps the rest', async () => {
  const d = join(dir, 'sweep');
  const memo = new HttpMemo(d, async () => true);
  await memo.set(entry(URL_A, L1));
  await memo.set(entry(URL_B, L2));
  await writeFile(join(d, 'junk.json'), '{');
  await writeFile(join(d, 'x.json.123.abc.tmp'), '');
  assert.is(await sweepHttpMemo(d, (l) => l === L1), 2);
  assert.equal(await readdir(d), [`${digestHex(sha256(URL_A))}.json`]);
  assert.is(await sweepHttpMemo(join(dir, 'missing'), () => true), 0, 'no dir: nothing to sweep');
});

test.run();

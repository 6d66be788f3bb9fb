/**
 * ADD <URL> without --checksum revalidates as BuildKit's http source does: the first download's
 * ETag / Last-Modified are remembered per URL with the layer they became (`<root>/cache/http/`),
 * the next build asks with If-None-Match / If-Modified-Since, and a 304 reuses that layer (no
 * body crosses the wire; the steps below hit the cache). Real builds against a node:http server
 * of the test's own on 127.0.0.1 that logs which requests were conditional.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { useBuildRoot } from '../helpers/build-root.js';
import { tsbuildOk } from '../helpers/cli.js';
import { startHttpFileServer, type HttpFileServer } from '../helpers/http-file-server.js';
import { cached, rawjsonEvents, started } from '../helpers/progress-events.js';

const test = suite('integration: ADD <URL> revalidated with ETag / Last-Modified');
const env = useBuildRoot(test, 'add-url-etag');
let server: HttpFileServer;

test.before(async () => {
  server = await startHttpFileServer();
});
test.after(async () => {
  await server?.close();
});

const LAST_MODIFIED = new Date('2021-05-06T07:08:09Z');

/** A context whose Dockerfile downloads `path` and runs a step below it that leaves a random stamp. */
function context(path: string): Promise<string> {
  return env.context(['FROM busybox', `ADD ${server.base}${path} /dl.txt`, 'RUN cat /proc/sys/kernel/random/uuid > /stamp'].join('\n'));
}

interface Built {
  readonly out: string;
  readonly ran: string[];
  readonly hit: string[];
  readonly content: string;
  readonly stamp: string;
}

let builds = 0;
async function build(ctx: string, extra: readonly string[] = []): Promise<Built> {
  const out = join(env.work, `out-${++builds}`);
  const r = await tsbuildOk(['--root', env.root, 'build', '--progress', 'rawjson', '--output', `type=local,dest=${out}`, ...extra, ctx]);
  const events = rawjsonEvents(r.stderr);
  return { out, ran: started(events), hit: cached(events), content: readFileSync(join(out, 'dl.txt'), 'utf8'), stamp: readFileSync(join(out, 'stamp'), 'utf8') };
}

const isAdd = (name: string) => / ADD /.test(name);
const isRun = (name: string) => / RUN /.test(name);

function memoPath(path: string): string {
  return join(env.root, 'cache/http', `${createHash('sha256').update(`${server.base}${path}`).digest('hex')}.json`);
}

function httpTmpLeft(): string[] {
  const tmp = join(env.root, 'tmp');
  return existsSync(tmp) ? readdirSync(tmp).filter((n) => n.startsWith('http-')) : [];
}

test('ETag: the first build downloads; the rebuild sends If-None-Match, gets 304 with no body, and the steps below are cached', async () => {
  const path = '/etag/a.txt';
  server.set(path, { body: 'version one\n', etag: '"v1"', lastModified: LAST_MODIFIED });
  const ctx = await context(path);
  const first = await build(ctx);
  assert.is(first.content, 'version one\n');
  assert.is(statSync(join(first.out, 'dl.txt')).mtimeMs, LAST_MODIFIED.getTime(), 'mtime from Last-Modified');
  assert.equal(
    server.requestsFor(path).map((r) => [r.status, r.ifNoneMatch]),
    [[200, undefined]],
  );
  const memo = JSON.parse(await readFile(memoPath(path), 'utf8')) as Record<string, unknown>;
  assert.is(memo.url, `${server.base}${path}`);
  assert.is(memo.etag, '"v1"');
  assert.is(memo.lastModified, LAST_MODIFIED.toUTCString());
  assert.is(memo.filename, 'a.txt');

  const again = await build(ctx);
  const reqs = server.requestsFor(path);
  assert.is(reqs.length, 2);
  assert.equal({ ...reqs[1] }, { path, ifNoneMatch: '"v1"', ifModifiedSince: LAST_MODIFIED.toUTCString(), status: 304, bytes: 0 });
  assert.ok(again.hit.some(isAdd), `ADD cached: ${JSON.stringify(again)}`);
  assert.ok(again.hit.some(isRun), `RUN cached: ${JSON.stringify(again)}`);
  assert.not.ok(again.ran.some((n) => isAdd(n) || isRun(n)), `nothing below the download ran: ${JSON.stringify(again.ran)}`);
  assert.is(again.stamp, first.stamp);
  assert.is(again.content, 'version one\n');
  assert.is(statSync(join(again.out, 'dl.txt')).mtimeMs, LAST_MODIFIED.getTime(), 'the reused layer keeps the mtime');
  assert.equal(httpTmpLeft(), []);
});

test('changed content and ETag: the conditional request gets a 200, the new bytes are used and the steps below rerun; then 304 again', async () => {
  const path = '/etag/changing.txt';
  server.set(path, { body: 'old\n', etag: '"old"' });
  const ctx = await context(path);
  const first = await build(ctx);
  server.set(path, { body: 'new content\n', etag: '"new"' });
  const second = await build(ctx);
  assert.equal(
    server.requestsFor(path).map((r) => [r.status, r.ifNoneMatch]),
    [
      [200, undefined],
      [200, '"old"'],
    ],
  );
  assert.is(second.content, 'new content\n');
  assert.ok(second.ran.some(isRun), `RUN reran: ${JSON.stringify(second.ran)}`);
  assert.is.not(second.stamp, first.stamp);
  const memo = JSON.parse(await readFile(memoPath(path), 'utf8')) as Record<string, unknown>;
  assert.is(memo.etag, '"new"');
  const third = await build(ctx);
  assert.equal(server.requestsFor(path).at(-1), { path, ifNoneMatch: '"new"', status: 304, bytes: 0 });
  assert.is(third.stamp, second.stamp);
  assert.is(third.content, 'new content\n');
});

test('Last-Modified alone: If-Modified-Since is sent and a 304 reuses the download', async () => {
  const path = '/lm/only.txt';
  server.set(path, { body: 'dated\n', lastModified: LAST_MODIFIED });
  const ctx = await context(path);
  const first = await build(ctx);
  const again = await build(ctx);
  assert.equal(server.requestsFor(path).at(-1), { path, ifModifiedSince: LAST_MODIFIED.toUTCString(), status: 304, bytes: 0 });
  assert.is(again.stamp, first.stamp);
  assert.ok(again.hit.some(isRun));
});

test('a server that ignores conditional requests: downloaded every time; the steps below still hit while the bytes are the same', async () => {
  const path = '/ignores/conditionals.txt';
  server.set(path, { body: 'always 200\n', etag: '"same"', conditional: false });
  const ctx = await context(path);
  const first = await build(ctx);
  const again = await build(ctx);
  assert.equal(
    server.requestsFor(path).map((r) => [r.status, r.ifNoneMatch, r.bytes]),
    [
      [200, undefined, 11],
      [200, '"same"', 11],
    ],
  );
  assert.is(again.content, 'always 200\n');
  assert.is(again.stamp, first.stamp);
  assert.ok(again.hit.some(isRun));
});

test('no ETag and no Last-Modified: no conditional header, downloaded every time, nothing remembered; mtime is the epoch', async () => {
  const path = '/plain/file.txt';
  server.set(path, { body: 'no validators\n' });
  const ctx = await context(path);
  const first = await build(ctx);
  const again = await build(ctx);
  assert.equal(
    server.requestsFor(path).map((r) => [r.status, r.ifNoneMatch, r.ifModifiedSince]),
    [
      [200, undefined, undefined],
      [200, undefined, undefined],
    ],
  );
  assert.not.ok(existsSync(memoPath(path)));
  // No Last-Modified: mtime is the epoch (as BuildKit), never the download time, so the same
  // bytes make the same layer on every download.
  assert.is(statSync(join(again.out, 'dl.txt')).mtimeMs, 0);
  assert.is(again.stamp, first.stamp, 'same bytes: the RUN below is cached');
});

test('--no-cache sends no conditional header (a forced refresh); the next build revalidates again', async () => {
  const path = '/nocache/file.txt';
  server.set(path, { body: 'refresh me\n', etag: '"r1"', lastModified: LAST_MODIFIED });
  const ctx = await context(path);
  await build(ctx);
  await build(ctx, ['--no-cache']);
  await build(ctx);
  assert.equal(
    server.requestsFor(path).map((r) => [r.status, r.ifNoneMatch, r.ifModifiedSince]),
    [
      [200, undefined, undefined],
      [200, undefined, undefined],
      [304, '"r1"', LAST_MODIFIED.toUTCString()],
    ],
  );
});

test('a 304 naming another ETag than the one asked about is not trusted: the URL is fetched again without conditions', async () => {
  const path = '/odd/not-modified.txt';
  server.set(path, { body: 'first\n', etag: '"a"' });
  const ctx = await context(path);
  await build(ctx);
  server.set(path, { body: 'second\n', etag: '"b"', alwaysNotModified: '"b"' });
  const again = await build(ctx);
  assert.equal(
    server.requestsFor(path).map((r) => [r.status, r.ifNoneMatch]),
    [
      [200, undefined],
      [304, '"a"'],
      [200, undefined],
    ],
  );
  assert.is(again.content, 'second\n');
});

test('a damaged memo entry is ignored: a full download, which rewrites it', async () => {
  const path = '/damaged/file.txt';
  server.set(path, { body: 'fine\n', etag: '"d1"' });
  const ctx = await context(path);
  await build(ctx);
  await writeFile(memoPath(path), '{"version":1,"url":');
  const again = await build(ctx);
  assert.equal(server.requestsFor(path).at(-1), { path, status: 200, bytes: 5 });
  assert.is(again.content, 'fine\n');
  assert.is((JSON.parse(await readFile(memoPath(path), 'utf8')) as { etag: string }).etag, '"d1"');
});

test('the layer removed behind the cache\'s back: the memo is not trusted and the URL is downloaded in full', async () => {
  const path = '/gone/layer.txt';
  server.set(path, { body: 'layer content\n', etag: '"g1"' });
  const ctx = await context(path);
  await build(ctx);
  const memo = JSON.parse(await readFile(memoPath(path), 'utf8')) as { diffId: string };
  await rm(join(env.root, 'layers', memo.diffId.slice('sha256:'.length)), { recursive: true, force: true });
  const again = await build(ctx);
  assert.equal(server.requestsFor(path).at(-1), { path, status: 200, bytes: 14 });
  assert.is(again.content, 'layer content\n');
  const fresh = JSON.parse(await readFile(memoPath(path), 'utf8')) as { diffId: string };
  assert.is(fresh.diffId, memo.diffId, 'the same bytes make the same layer again');
  assert.ok(existsSync(join(env.root, 'layers', memo.diffId.slice('sha256:'.length), 'committed')));
});

test('prune drops the memo entry along with the layer it names; the next build downloads in full', async () => {
  const path = '/pruned/file.txt';
  server.set(path, { body: 'pruned\n', etag: '"p1"' });
  const ctx = await context(path);
  await build(ctx);
  const memo = JSON.parse(await readFile(memoPath(path), 'utf8')) as { diffId: string };
  await tsbuildOk(['--root', env.root, 'prune']);
  assert.not.ok(existsSync(join(env.root, 'layers', memo.diffId.slice('sha256:'.length))), 'the download layer is held only by its cache record, which no image uses: prune removes both');
  assert.not.ok(existsSync(memoPath(path)), 'and its memo entry with it');
  const again = await build(ctx);
  assert.equal(server.requestsFor(path).at(-1), { path, status: 200, bytes: 7 });
  assert.is(again.content, 'pruned\n');
});

test.run();

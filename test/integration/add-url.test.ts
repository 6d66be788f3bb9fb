/**
 * ADD from http(s) URLs (issue 02 §6) as real builds against a node:http server of the test's
 * own on 127.0.0.1: content, mode 0600, mtime from Last-Modified, redirects, a remote tar kept
 * as a file unless --unpack=true, --unpack=false on a local tar, --checksum good and bad, a
 * 404, and no download on a cached rebuild with --checksum.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { useBuildRoot } from '../helpers/build-root.js';
import { tsbuild, tsbuildOk } from '../helpers/cli.js';

const test = suite('integration: ADD from URLs');
const env = useBuildRoot(test, 'add-url');

const HELLO = 'hello over http\n';
const LAST_MODIFIED = new Date('2020-01-02T03:04:05Z');
const state = { server: undefined as Server | undefined, base: '', tgz: Buffer.alloc(0), hits: new Map<string, number>() };

test.before(async () => {
  const src = join(env.work, 'tarsrc');
  await mkdir(join(src, 'pkg'), { recursive: true });
  await writeFile(join(src, 'pkg/inner.txt'), 'inside the archive\n');
  state.tgz = execFileSync('tar', ['-czf', '-', '-C', src, 'pkg']);
  state.server = createServer((req, res) => {
    const path = req.url ?? '/';
    state.hits.set(path, (state.hits.get(path) ?? 0) + 1);
    if (path === '/files/hello.txt' || path.startsWith('/counted/hello.txt')) {
      res.writeHead(200, { 'content-type': 'text/plain', 'last-modified': LAST_MODIFIED.toUTCString() });
      res.end(HELLO);
    } else if (path === '/files/pkg.tar.gz') {
      res.writeHead(200, { 'content-type': 'application/gzip' });
      res.end(state.tgz);
    } else if (path === '/moved') {
      res.writeHead(302, { location: '/files/hello.txt' });
      res.end();
    } else if (path === '/named/') {
      res.writeHead(200, { 'content-disposition': 'attachment; filename="report.txt"' });
      res.end('named\n');
    } else {
      res.writeHead(404);
      res.end('not found');
    }
  });
  await new Promise<void>((resolve) => state.server!.listen(0, '127.0.0.1', resolve));
  state.base = `http://127.0.0.1:${(state.server!.address() as AddressInfo).port}`;
});

test.after(async () => {
  await new Promise<void>((resolve) => (state.server ? state.server.close(() => resolve()) : resolve()));
});

async function build(ctx: string, name: string): Promise<string> {
  const out = join(env.work, `${name}-out`);
  await tsbuildOk(['--root', env.root, 'build', '--output', `type=local,dest=${out}`, ctx]);
  return out;
}

test('a file: content, mode 0600, mtime from Last-Modified; a redirect is followed; a path ending in / is named by its last segment (BuildKit ignores Content-Disposition)', async () => {
  const u = state.base;
  const ctx = await env.context(
    ['FROM scratch', `ADD ${u}/files/hello.txt /dl/`, `ADD ${u}/moved /dl/moved.txt`, `ADD --chmod=644 ${u}/files/hello.txt /chmod.txt`, `ADD ${u}/named/ /n/`].join('\n'),
  );
  const out = await build(ctx, 'file');
  assert.is(readFileSync(join(out, 'dl/hello.txt'), 'utf8'), HELLO);
  const st = statSync(join(out, 'dl/hello.txt'));
  assert.is(st.mode & 0o7777, 0o600);
  assert.is(st.mtimeMs, LAST_MODIFIED.getTime());
  assert.is(readFileSync(join(out, 'dl/moved.txt'), 'utf8'), HELLO);
  assert.is(statSync(join(out, 'chmod.txt')).mode & 0o7777, 0o644);
  assert.is(readFileSync(join(out, 'n/named'), 'utf8'), 'named\n');
});

test('--chown applies to a downloaded file', async () => {
  const ctx = await env.context(['FROM busybox', `ADD --chown=12:34 ${state.base}/files/hello.txt /h.txt`, 'RUN stat -c %u:%g:%a /h.txt > /owner'].join('\n'));
  const out = await build(ctx, 'chown');
  assert.is(readFileSync(join(out, 'owner'), 'utf8'), '12:34:600\n');
});

test('a remote tar.gz stays a file; --unpack=true extracts it; --unpack=false keeps a local tar', async () => {
  const ctx = await env.context(['FROM scratch', `ADD ${state.base}/files/pkg.tar.gz /keep/`, `ADD --unpack=true ${state.base}/files/pkg.tar.gz /x/`, 'ADD --unpack=false local.tar.gz /local/', 'ADD local.tar.gz /localx/'].join('\n'));
  await writeFile(join(ctx, 'local.tar.gz'), state.tgz);
  const out = await build(ctx, 'unpack');
  assert.equal(readFileSync(join(out, 'keep/pkg.tar.gz')), state.tgz, 'a remote archive is not extracted by default');
  assert.is(readFileSync(join(out, 'x/pkg/inner.txt'), 'utf8'), 'inside the archive\n');
  assert.equal(readFileSync(join(out, 'local/local.tar.gz')), state.tgz);
  assert.is(readFileSync(join(out, 'localx/pkg/inner.txt'), 'utf8'), 'inside the archive\n');
});

test('--checksum: a match builds, and a cached rebuild does not download again', async () => {
  const sum = `sha256:${createHash('sha256').update(HELLO).digest('hex')}`;
  const ctx = await env.context(['FROM scratch', `ADD --checksum=${sum} ${state.base}/counted/hello.txt /c.txt`].join('\n'));
  const out = await build(ctx, 'checksum');
  assert.is(readFileSync(join(out, 'c.txt'), 'utf8'), HELLO);
  assert.is(state.hits.get('/counted/hello.txt'), 1);
  await build(ctx, 'checksum-again');
  assert.is(state.hits.get('/counted/hello.txt'), 1, 'a cache hit on the checksum needs no download');
});

test('without --checksum: downloaded again on rebuild, and the steps below hit the cache while the content is the same', async () => {
  const path = '/counted/hello.txt?plain';
  const ctx = await env.context(['FROM busybox', `ADD ${state.base}${path} /h.txt`, 'RUN cat /proc/sys/kernel/random/uuid > /stamp'].join('\n'));
  const first = readFileSync(join(await build(ctx, 'plain'), 'stamp'), 'utf8');
  const again = readFileSync(join(await build(ctx, 'plain-again'), 'stamp'), 'utf8');
  assert.is(state.hits.get(path), 2, 'no checksum: the URL is fetched on every build');
  assert.is(again, first, 'same content: the RUN below is cached');
});

test('--checksum mismatch: exit 1 naming the Dockerfile line and both digests; nothing stored', async () => {
  const bad = `sha256:${'0'.repeat(64)}`;
  const actual = `sha256:${createHash('sha256').update(HELLO).digest('hex')}`;
  const ctx = await env.context(['FROM scratch', '', `ADD --checksum=${bad} ${state.base}/files/hello.txt /c.txt`].join('\n'));
  const r = await tsbuild(['--root', env.root, 'build', ctx]);
  assert.is(r.code, 1);
  assert.match(r.stderr, 'Dockerfile:3');
  assert.match(r.stderr, bad);
  assert.match(r.stderr, actual);
  const tmp = join(env.root, 'tmp');
  assert.equal(existsSync(tmp) ? readdirSync(tmp).filter((n) => n.startsWith('http-')) : [], [], 'no download left behind');
});

test('a 404 is a clear error naming the URL', async () => {
  const url = `${state.base}/missing.txt`;
  const ctx = await env.context(['FROM scratch', `ADD ${url} /m.txt`].join('\n'));
  const r = await tsbuild(['--root', env.root, 'build', ctx]);
  assert.is(r.code, 1);
  assert.match(r.stderr, 'Dockerfile:2');
  assert.match(r.stderr, url);
  assert.match(r.stderr, '404');
});

test.run();

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { readBounded, readErrorBody } from '../../../src/remote/bounded-body.js';
import { capBytes } from '../../../src/byte-cap.js';
import { timeoutDescription, transferFailure, type HttpTimeouts } from '../../../src/remote/http-timeouts.js';
import { Transport } from '../../../src/remote/transport.js';
import { RegistryError } from '../../../src/remote/registry-error.js';
import { networkPolicy } from '../../../src/cli/config-file.js';
import { parseConfig } from '../../../src/cli/config-parse.js';
import { effectiveSettings } from '../../../src/cli/config-command.js';
import { BuildError } from '../../../src/errors.js';

/** An endless stream of `chunk`s that records whether it was destroyed (the connection dropped). */
function endless(chunk: Buffer): Readable & { pulled: () => number } {
  let n = 0;
  const r = new Readable({
    read() {
      n += chunk.length;
      this.push(chunk);
    },
  });
  return Object.assign(r, { pulled: () => n });
}

const body = suite('bounded bodies');
body('readBounded stops an endless body just past the cap and destroys it', async () => {
  const src = endless(Buffer.alloc(1000, 1));
  try {
    await readBounded(src, 10_000, () => new BuildError('REGISTRY', 'too big'));
    assert.unreachable();
  } catch (e) {
    assert.is((e as Error).message, 'too big');
  }
  assert.ok(src.destroyed, 'body destroyed');
  assert.ok(src.pulled() < 100_000, `read ${src.pulled()} bytes, not the whole stream`);
});
body('readBounded returns a body at the cap; a stream error is thrown as is', async () => {
  assert.equal(await readBounded(Readable.from([Buffer.from('ab'), Buffer.from('cd')]), 4, () => new Error('no')), Buffer.from('abcd'));
  const failing = new Readable({
    read() {
      this.destroy(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }));
    },
  });
  try {
    await readBounded(failing, 10, () => new Error('no'));
    assert.unreachable();
  } catch (e) {
    assert.is((e as { code?: string }).code, 'ECONNRESET');
  }
});
body('readErrorBody keeps the first bytes of an endless body and never throws', async () => {
  const src = endless(Buffer.from('{"errors":[{"code":"X"}]}                                   '));
  const text = await readErrorBody(src, 100);
  assert.is(text.length, 100);
  assert.ok(src.destroyed);
  const failing = new Readable({
    read() {
      this.destroy(new Error('boom'));
    },
  });
  assert.is(await readErrorBody(failing), '');
});
body('capBytes fails a pipeline once more than the cap went through', async () => {
  let written = 0;
  const sink = new Writable({
    write(c: Buffer, _e, cb) {
      written += c.length;
      cb();
    },
  });
  try {
    await pipeline(endless(Buffer.alloc(4096)), capBytes(10_000, () => new BuildError('REGISTRY', 'over')), sink);
    assert.unreachable();
  } catch (e) {
    assert.is((e as Error).message, 'over');
  }
  assert.ok(written <= 10_000, `${written} bytes reached the sink`);
});
body.run();

const T: HttpTimeouts = { connectMs: 300, responseMs: 300, idleMs: 300 };

const words = suite('timeout and transfer messages');
words('undici timeout codes, also wrapped in fetch failed', () => {
  assert.is(timeoutDescription({ code: 'UND_ERR_HEADERS_TIMEOUT' }, { ...T, responseMs: 30_000 }), 'no response within 30s');
  assert.is(timeoutDescription(new TypeError('fetch failed', { cause: { code: 'UND_ERR_CONNECT_TIMEOUT' } }), T), 'could not connect within 300ms');
  assert.is(timeoutDescription(new TypeError('terminated', { cause: { code: 'UND_ERR_BODY_TIMEOUT' } }), { ...T, idleMs: 1500 }), 'no data for 1.5s');
  assert.is(timeoutDescription(new Error('x'), T), undefined);
});
words('a body cut short reads as such; other causes keep their innermost message', () => {
  assert.is(transferFailure(new TypeError('terminated', { cause: new Error('other side closed') }), T), 'the server closed the connection before the body was complete');
  assert.is(transferFailure(Object.assign(new Error('Response body length does not match content-length header'), { code: 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH' }), T), 'the server closed the connection before the body was complete');
  assert.is(transferFailure(new TypeError('fetch failed', { cause: new Error('connect ECONNREFUSED 127.0.0.1:1') }), T), 'connect ECONNREFUSED 127.0.0.1:1');
});
words.run();

async function listen(handler: Parameters<typeof createServer>[1]): Promise<{ srv: Server; url: string }> {
  const srv = createServer(handler);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { srv, url: `http://127.0.0.1:${(srv.address() as { port: number }).port}/v2/` };
}

async function stop(srv: Server): Promise<void> {
  srv.closeAllConnections();
  await new Promise<void>((r) => srv.close(() => r()));
}

const tr = suite('Transport against stalling and busy servers');
tr('a server that never answers: RegistryError naming the registry after the response timeout, not retried', async () => {
  let requests = 0;
  const { srv, url } = await listen(() => void requests++);
  const t = new Transport({ timeouts: T, retry: { attempts: 5, baseDelayMs: 10, maxDelayMs: 100 } });
  const started = Date.now();
  try {
    await t.send({ method: 'GET', url }, new AbortController().signal, { registry: 'stall.test' });
    assert.unreachable();
  } catch (e) {
    assert.instance(e, RegistryError);
    assert.match((e as Error).message, /^registry stall\.test: no response within 300ms \(GET http:\/\/127\.0\.0\.1:\d+\/v2\/\)$/);
    assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
    assert.is(requests, 1, 'a timeout is not retried');
  } finally {
    await t.close();
    await stop(srv);
  }
});
tr('a TLS handshake that never completes: the connect timeout, naming the registry', async () => {
  const conns: Socket[] = [];
  const silent = createNetServer((c) => void conns.push(c));
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const t = new Transport({ timeouts: T, retry: { attempts: 5, baseDelayMs: 10, maxDelayMs: 100 } });
  const started = Date.now();
  try {
    await t.send({ method: 'GET', url: `https://127.0.0.1:${(silent.address() as { port: number }).port}/v2/` }, new AbortController().signal, { registry: 'tls.test' });
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /^registry tls\.test: could not connect within 300ms \(GET https:/);
    assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
  } finally {
    await t.close();
    for (const c of conns) c.destroy();
    await new Promise<void>((r) => silent.close(() => r()));
  }
});
tr('503 with Retry-After past the retry budget (even capped under it) is returned at once', async () => {
  let requests = 0;
  const { srv, url } = await listen((_req, res) => {
    requests++;
    res.writeHead(503, { 'retry-after': '3600' }).end();
  });
  const t = new Transport({ timeouts: T, retry: { attempts: 5, baseDelayMs: 10, maxDelayMs: 30_000, budgetMs: 60_000 } });
  const started = Date.now();
  try {
    const res = await t.send({ method: 'GET', url }, new AbortController().signal, { registry: 'busy.test' });
    await res.body.dump();
    assert.is(res.status, 503);
    assert.is(requests, 1);
    assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`);
  } finally {
    await t.close();
    await stop(srv);
  }
});
tr('503 without Retry-After: retries stop when the budget is spent', async () => {
  let requests = 0;
  const { srv, url } = await listen((_req, res) => {
    requests++;
    res.writeHead(503).end();
  });
  const t = new Transport({ timeouts: T, retry: { attempts: 100, baseDelayMs: 200, maxDelayMs: 200, budgetMs: 700 } });
  const started = Date.now();
  try {
    const res = await t.send({ method: 'GET', url }, new AbortController().signal, { registry: 'busy.test' });
    await res.body.dump();
    assert.is(res.status, 503);
    assert.ok(requests >= 2 && requests < 10, `${requests} attempts`);
    assert.ok(Date.now() - started < 1500, `took ${Date.now() - started} ms`);
  } finally {
    await t.close();
    await stop(srv);
  }
});
tr.run();

const cfg = suite('tsbuild.toml [network]');
cfg('durations parse into timeouts and a retry budget; absent keys take the defaults', () => {
  const { config } = parseConfig('[network]\nconnect-timeout = "2s"\nidle-timeout = "1m30s"\nretry-budget = "500ms"\n', 't.toml');
  assert.equal(networkPolicy(config), { timeouts: { connectMs: 2000, responseMs: 60_000, idleMs: 90_000 }, retryBudgetMs: 500 });
  assert.equal(networkPolicy({}), { timeouts: { connectMs: 30_000, responseMs: 60_000, idleMs: 60_000 }, retryBudgetMs: 60_000 });
});
cfg('tsbuild config shows each [network] key with its source', () => {
  const text = '[network]\nidle-timeout = "5s"\n';
  const s = effectiveSettings(undefined, 't.toml', {}, { ...parseConfig(text, 't.toml'), path: 't.toml' });
  assert.equal(s.find((x) => x.key === 'network.idle-timeout'), { key: 'network.idle-timeout', value: '5s', source: 't.toml:2' });
  assert.equal(s.find((x) => x.key === 'network.connect-timeout'), { key: 'network.connect-timeout', value: '30s', source: 'default' });
});
cfg('unknown keys, bad and zero durations are usage errors with file:line', () => {
  const bad = (text: string, msg: RegExp) => {
    try {
      parseConfig(text, 't.toml');
      assert.unreachable();
    } catch (e) {
      assert.instance(e, BuildError);
      assert.match((e as Error).message, msg);
    }
  };
  bad('[network]\nidle-timout = "1s"\n', /^t\.toml:2: network\.idle-timout: unknown key \(did you mean idle-timeout\?\)/);
  bad('[network]\n\nresponse-timeout = "soon"\n', /^t\.toml:3: network\.response-timeout: expected a positive duration/);
  bad('[network]\nconnect-timeout = "0s"\n', /network\.connect-timeout: expected a positive duration/);
  bad('[network]\nconnect-timeout = 30\n', /network\.connect-timeout: expected a string/);
});
cfg.run();

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { nullSink } from '../../../src/events.js';
import { SlirpNetworkProvider } from '../../../src/runtime/sandbox-network.js';

const pexec = promisify(execFile);
const ctx = { signal: new AbortController().signal, events: nullSink };

/** The slirp4netns processes this test process started. */
async function slirps(): Promise<number> {
  const { stdout } = await pexec('pgrep', ['-P', String(process.pid), '-x', 'slirp4netns']).catch((e: { stdout: string }) => e);
  return stdout.split('\n').filter(Boolean).length;
}

async function until(cond: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.unreachable(`not within 5 s: ${what}`);
}

test('prepare() makes the next network in the background; acquire() takes that one, not a second; close() kills them all', async () => {
  const net = new SlirpNetworkProvider();
  try {
    net.prepare(ctx);
    net.prepare(ctx); // one is being made: nothing more
    await until(async () => (await slirps()) === 1, 'prepare() starts slirp4netns before any acquire()');
    const a = await net.acquire(ctx);
    assert.ok(a, 'a private network');
    assert.is(await slirps(), 1, 'the prepared network was lent, none made besides');
    await a.verify();
    await a.release(true);
    net.prepare(ctx); // one is idle: nothing more
    const b = await net.acquire(ctx);
    assert.is(b?.path, a.path, 'the idle one again');
    assert.is(await slirps(), 1);
    await b!.release(true);
    net.prepare(ctx);
  } finally {
    await net.close();
  }
  assert.is(await slirps(), 0, 'no slirp4netns left running');
});

test('a network released after close() is torn down, and a network acquired after it too: close() waits for both', async () => {
  const net = new SlirpNetworkProvider();
  const a = await net.acquire(ctx);
  assert.ok(a);
  const closing = net.close(); // the last RUN is done: teardown starts while a RUN still holds a network
  await a.release(true); // not kept for reuse: the provider is closed
  const late = await net.acquire(ctx); // a RUN after all (a failure shell): made anew
  assert.ok(late, 'a network after close()');
  assert.not.equal(late.path, a.path);
  await late.release(true);
  await closing;
  await net.close();
  assert.is(await slirps(), 0, 'every teardown waited for');
});

test('keepAtMost(n) tears down idle networks beyond n at once, and keeps the rest for reuse', async () => {
  const net = new SlirpNetworkProvider();
  try {
    const [a, b] = [await net.acquire(ctx), await net.acquire(ctx)];
    assert.ok(a && b);
    await a.release(true);
    await b.release(true);
    assert.is(await slirps(), 2, 'both kept for reuse');
    net.keepAtMost(1);
    await until(async () => (await slirps()) === 1, 'the surplus network is torn down before close()');
    const c = await net.acquire(ctx);
    assert.ok(c && [a.path, b.path].includes(c.path), 'the one kept is lent again');
    await c.release(true);
  } finally {
    await net.close();
  }
  assert.is(await slirps(), 0);
});

test('close() also ends a network prepare() is still making', async () => {
  const net = new SlirpNetworkProvider();
  net.prepare(ctx);
  await net.close();
  assert.is(await slirps(), 0);
});

test.run();

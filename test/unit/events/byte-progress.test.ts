import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { RecordingSink, withByteProgress } from '../../../src/events.js';

const test = suite('events: withByteProgress');
const sinkAll = () => new Writable({ write: (_c, _e, cb) => cb() });

test('reports every MiB and once at the end, with the total', async () => {
  const events = new RecordingSink();
  const chunks = Array.from({ length: 10 }, () => Buffer.alloc(300 * 1024));
  await pipeline(withByteProgress(Readable.from(chunks), events, 'export x', 3_072_000), sinkAll());
  const currents = events.events.map((e) => (e.type === 'progress' ? e.current : -1));
  assert.equal(currents, [1_228_800, 2_457_600, 3_072_000]);
  assert.ok(events.events.every((e) => e.type === 'progress' && e.id === 'export x' && e.total === 3_072_000));
});

test('a failing source fails the metered stream', async () => {
  const source = new Readable({ read() {} });
  const metered = withByteProgress(source, new RecordingSink(), 'x');
  setImmediate(() => source.destroy(new Error('disk gone')));
  try {
    await pipeline(metered, sinkAll());
    assert.unreachable();
  } catch (e) {
    assert.is((e as Error).message, 'disk gone');
  }
});

test('destroying the metered stream closes the source', async () => {
  const source = new Readable({ read() {} });
  const metered = withByteProgress(source, new RecordingSink(), 'x');
  metered.destroy();
  await new Promise((r) => setImmediate(r));
  assert.ok(source.destroyed);
});

test.run();

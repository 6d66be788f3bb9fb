/** ReadAhead: ordered results with bounded look-ahead, and settle() for early exits. */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ReadAhead } from '../../../src/oci/layer/read-ahead.js';

const test = suite('oci: ReadAhead');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('results come in order, whatever order the calls finish in; at most width + 1 run at once', async () => {
  let running = 0;
  let peak = 0;
  const items = [...Array(40).keys()];
  const ahead = new ReadAhead(items, 5, async (i) => {
    peak = Math.max(peak, ++running);
    await sleep((i * 7) % 5);
    running--;
    return i * 2;
  });
  const out: number[] = [];
  while (!ahead.done) out.push(await ahead.next());
  assert.equal(out, items.map((i) => i * 2));
  assert.ok(peak <= 6, `peak ${peak}`);
});

test('a rejection surfaces at its own index; settle() waits for started calls and starts no more', async () => {
  const started: number[] = [];
  let finished = 0;
  const ahead = new ReadAhead([...Array(100).keys()], 3, async (i) => {
    started.push(i);
    await sleep(10);
    finished++;
    if (i === 1) throw new Error('at 1');
    return i;
  });
  assert.is(await ahead.next(), 0);
  const err = await ahead.next().catch((e: unknown) => e);
  assert.match(String(err), /at 1/);
  const before = started.length;
  await ahead.settle();
  assert.is(started.length, before, 'nothing new started');
  assert.is(finished, started.length, 'every started call settled');
  assert.ok(started.length <= 6);
});

test.run();

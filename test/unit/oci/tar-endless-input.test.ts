/** readTar on inputs that never end: zeros forever after the end blocks, a source that never yields. */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readTar } from '../../../src/oci/tar/tar-reader.js';

const test = suite('oci: tar reader on endless inputs');

/** Zero blocks for ever, counting what was read. */
function zeros(): AsyncIterable<Buffer> & { read: number } {
  const it = {
    read: 0,
    async *[Symbol.asyncIterator]() {
      for (;;) {
        it.read += 65536;
        yield Buffer.alloc(65536);
      }
    },
  };
  return it;
}

test('after the end-of-archive blocks, at most maxTrailingBytes more are read', async () => {
  const src = zeros();
  const members = [];
  for await (const m of readTar(src, undefined, { maxTrailingBytes: 1 << 20 })) members.push(m);
  assert.equal(members, []);
  assert.ok(src.read <= 2 << 20, `read ${src.read} bytes`);
});

test('an abort ends the wait on a source that never yields, and destroys it', async () => {
  let destroyed = false;
  const silent = {
    [Symbol.asyncIterator]: () => ({ next: () => new Promise<IteratorResult<Buffer>>(() => undefined) }),
    destroy: () => void (destroyed = true),
  };
  const ac = new AbortController();
  setTimeout(() => ac.abort(Object.assign(new Error('stop'), { name: 'AbortError' })), 20);
  const t0 = Date.now();
  try {
    for await (const _ of readTar(silent, ac.signal)) assert.unreachable('no member');
    assert.unreachable('must not end normally');
  } catch (e) {
    assert.is((e as Error).name, 'AbortError');
  }
  assert.ok(Date.now() - t0 < 1000);
  assert.ok(destroyed, 'the source was destroyed');
});

test.run();

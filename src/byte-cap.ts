import { Transform } from 'node:stream';

/**
 * A pass-through that fails with `tooLarge()` once more than `max` bytes went through it: put it
 * in a pipeline so an endless body stops there, before it fills a disk.
 */
export function capBytes(max: number, tooLarge: () => Error): Transform {
  let total = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      total += chunk.length;
      if (total > max) cb(tooLarge());
      else cb(null, chunk);
    },
  });
}

/**
 * Consumes `fn(items[i])` strictly in order while up to `width` later items are already being
 * worked on: an ordered map with bounded look-ahead, for walks whose output order is fixed
 * but whose per-item I/O (lstat, a small read) is latency-bound.
 *
 * Contract: `next()` returns the results in the order of `items` (a rejection surfaces at its
 * own index); at most `width + 1` calls of `fn` run or wait unconsumed at once. `settle()`
 * starts nothing new and resolves when every started call has settled, so that a walk that
 * stops early (error, abort) leaves no I/O running behind it; rejections it swallows were
 * never consumed, so they are no one's error.
 */
export class ReadAhead<T, R> {
  readonly #items: readonly T[];
  readonly #width: number;
  readonly #fn: (item: T) => Promise<R>;
  /** Index → the running or unconsumed call; consumed results aren't kept. */
  readonly #pending = new Map<number, Promise<R>>();
  #nextStart = 0;
  #consumed = 0;
  #stopped = false;

  constructor(items: readonly T[], width: number, fn: (item: T) => Promise<R>) {
    this.#items = items;
    this.#width = width;
    this.#fn = fn;
  }

  /** True once every item's result was handed out by `next()`. */
  get done(): boolean {
    return this.#consumed >= this.#items.length;
  }

  /** The result for the next item in order; starts the items up to `width` beyond it. */
  next(): Promise<R> {
    if (this.done) throw new Error('ReadAhead.next() past the end');
    const i = this.#consumed++;
    this.#fill(i + 1 + this.#width);
    const p = this.#pending.get(i)!;
    this.#pending.delete(i);
    return p;
  }

  /** Stops starting items and waits for those running to settle (their results are dropped). */
  async settle(): Promise<void> {
    this.#stopped = true;
    await Promise.allSettled(this.#pending.values());
  }

  #fill(until: number): void {
    const end = Math.min(until, this.#items.length);
    for (; this.#nextStart < end && !this.#stopped; this.#nextStart++) {
      const p = this.#fn(this.#items[this.#nextStart]!);
      p.catch(() => undefined); // surfaced by next() if consumed; dropped by settle() if not
      this.#pending.set(this.#nextStart, p);
    }
  }
}

/**
 * Runs `fn` over `items` with at most `width` calls in flight, in order of `items`.
 *
 * Contract: after the first failure (or once `signal` is aborted) no further call starts, and
 * the returned promise settles only after every started call has settled, so nothing the
 * caller launched is still touching the filesystem when it regains control (an overlay it is
 * about to unmount, a temp dir it is about to remove). It then rejects with the first failure
 * that is not an echo of the abort (`signal.reason`), else with the abort itself.
 */
export async function forEachSettled<T>(items: readonly T[], width: number, signal: AbortSignal, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const errors: unknown[] = [];
  const lane = async (): Promise<void> => {
    while (next < items.length && errors.length === 0 && !signal.aborted) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (e) {
        errors.push(e);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, lane));
  const real = errors.find((e) => e !== signal.reason);
  if (real !== undefined || errors.length > 0) throw real ?? errors[0];
  signal.throwIfAborted();
}

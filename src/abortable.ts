/**
 * `p`, or a rejection with `signal.reason` as soon as `signal` aborts, whichever comes first.
 * For waits nothing else can cancel: an open() of a FIFO no one writes to, blocked in libuv's
 * thread pool, or a stream that never yields again. The operation itself goes on; the CLI ends
 * the process after an interrupt, so such a straggler cannot keep it alive.
 */
export function abortable<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) {
    p.catch(() => undefined);
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

import { Transform, type Readable } from 'node:stream';
import type { ProgressEvent } from '../schemas/types/progress-event.js';

/**
 * The one progress stream, typed from schemas/tsbuild/progress-event.schema.json (what
 * `--progress rawjson` prints). The engine only emits; src/cli renders (tty, plain or JSON lines).
 * `vertex` is the vertex digest, stable across runs for the same step.
 */
export type BuildEvent = ProgressEvent;

export interface EventSink {
  emit(event: BuildEvent): void;
}

/** A sink that drops everything; for library callers and tests that don't look at progress. */
export const nullSink: EventSink = { emit() {} };

/** Records events; for tests and for the metadata/explain paths. */
export class RecordingSink implements EventSink {
  readonly events: BuildEvent[] = [];
  emit(event: BuildEvent): void {
    this.events.push(event);
  }
}

/** How many bytes between two `progress` events of one transfer: enough for a live rate, few enough for rawjson. */
const PROGRESS_STEP = 1 << 20;

/**
 * `source`, reporting the bytes read from it as `progress` events under `id` (every MiB, and
 * once at the end), for pulls, pushes and exports of large blobs. Errors travel both ways: a
 * failing source fails the returned stream, and destroying the returned stream closes `source`.
 */
export function withByteProgress(source: Readable, events: EventSink, id: string, total?: number): Readable {
  let current = 0;
  let reported = 0;
  const report = () => {
    reported = current;
    events.emit({ type: 'progress', id, current, ...(total === undefined ? {} : { total }), at: Date.now() });
  };
  const meter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      current += chunk.length;
      if (current - reported >= PROGRESS_STEP) report();
      cb(null, chunk);
    },
    flush(cb) {
      report();
      cb();
    },
  });
  source.once('error', (e) => meter.destroy(e));
  meter.once('close', () => {
    if (!source.readableEnded) source.destroy();
  });
  return source.pipe(meter);
}

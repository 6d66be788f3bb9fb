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

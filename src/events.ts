import type { SourceLocation } from './errors.js';

/**
 * The one progress stream. The engine only emits; src/cli renders (tty, plain or JSON lines).
 * `vertex` is the vertex digest, stable across runs for the same step.
 */
export type BuildEvent =
  | { type: 'vertex.start'; vertex: string; name: string; at: number }
  | { type: 'vertex.cached'; vertex: string; name: string; at: number }
  | { type: 'vertex.done'; vertex: string; name: string; at: number }
  | { type: 'vertex.error'; vertex: string; name: string; at: number; message: string }
  | { type: 'vertex.cancelled'; vertex: string; name: string; at: number }
  | { type: 'log'; vertex: string; stream: 1 | 2; data: string; at: number }
  | { type: 'progress'; id: string; current: number; total?: number; at: number }
  | { type: 'warning'; message: string; location?: SourceLocation; at: number }
  | { type: 'export.done'; target: string; digest: string; at: number };

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

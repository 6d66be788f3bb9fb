import type { EventSink } from './events.js';

/**
 * Passed explicitly through every async seam: cancellation and the progress stream.
 * Never stored in a module-level variable.
 */
export interface Ctx {
  readonly signal: AbortSignal;
  readonly events: EventSink;
}

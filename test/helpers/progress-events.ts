import type { CacheMissExplanation, ProgressEvent } from '../../schemas/types/progress-event.js';

/** The rawjson progress events in a tsbuild run's stderr (one JSON object a line). */
export function rawjsonEvents(stderr: string): ProgressEvent[] {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as ProgressEvent);
}

/** Names of the steps that ran (reading the build context is not a step). */
export function started(events: readonly ProgressEvent[]): string[] {
  return events.flatMap((e) => (e.type === 'vertex.start' && !e.name.startsWith('[internal] load build context') ? [e.name] : []));
}

/** Names of the steps served from the cache. */
export function cached(events: readonly ProgressEvent[]): string[] {
  return events.flatMap((e) => (e.type === 'vertex.cached' ? [e.name] : []));
}

/** The cache-miss explanation of the first step that ran whose name contains `part`. */
export function explained(events: readonly ProgressEvent[], part: string): CacheMissExplanation | undefined {
  const e = events.find((x) => x.type === 'vertex.start' && x.name.includes(part));
  return e && e.type === 'vertex.start' ? e.explain : undefined;
}

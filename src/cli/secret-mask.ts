import type { BuildEvent, EventSink } from '../events.js';

/** Shorter values would mask ordinary words and digits in every step name. */
const MIN_MASKED = 4;

/**
 * An EventSink that shows every secret value as `****` in step names and error messages. The
 * frontend already masks a secret's env= variable as BuildKit does; this also covers a value that
 * reaches a name some other way (a build arg holding it, expanded into a RUN's name), which
 * BuildKit would print. Logs of the RUN itself are left alone, as in BuildKit.
 */
export function maskSecrets(sink: EventSink, values: readonly string[]): EventSink {
  const secrets = [...new Set(values.filter((v) => v.length >= MIN_MASKED))].sort((a, b) => b.length - a.length);
  if (secrets.length === 0) return sink;
  const mask = (s: string): string => secrets.reduce((acc, v) => acc.split(v).join('****'), s);
  return {
    emit(event: BuildEvent): void {
      const e = { ...event } as Record<string, unknown>;
      for (const k of ['name', 'message']) if (typeof e[k] === 'string') e[k] = mask(e[k]);
      sink.emit(e as unknown as BuildEvent);
    },
  };
}

import type { BuildEvent, EventSink } from '../events.js';

export type ProgressMode = 'plain' | 'rawjson' | 'quiet';

/**
 * Renders the event stream. `plain` is BuildKit's CI style: numbered steps, their output lines,
 * DONE/CACHED/ERROR with durations. `rawjson` is one event per line for tools. The TTY view
 * comes later; on a TTY, plain is used for now.
 */
export function progressSink(mode: ProgressMode, write: (s: string) => void): EventSink {
  if (mode === 'quiet') return { emit() {} };
  if (mode === 'rawjson') return { emit: (e) => write(JSON.stringify(e) + '\n') };
  const numbers = new Map<string, number>();
  const started = new Map<string, number>();
  const num = (v: string) => {
    let n = numbers.get(v);
    if (n === undefined) numbers.set(v, (n = numbers.size + 1));
    return n;
  };
  const secs = (v: string, at: number) => ((at - (started.get(v) ?? at)) / 1000).toFixed(1);
  return {
    emit(e: BuildEvent) {
      switch (e.type) {
        case 'vertex.start':
          started.set(e.vertex, e.at);
          write(`#${num(e.vertex)} ${e.name}\n`);
          break;
        case 'vertex.cached':
          write(`#${num(e.vertex)} ${e.name}\n#${num(e.vertex)} CACHED\n`);
          break;
        case 'vertex.done':
          write(`#${num(e.vertex)} DONE ${secs(e.vertex, e.at)}s\n`);
          break;
        case 'vertex.error':
          write(`#${num(e.vertex)} ERROR: ${e.message}\n`);
          break;
        case 'vertex.cancelled':
          write(`#${num(e.vertex)} CANCELED\n`);
          break;
        case 'log': {
          const n = num(e.vertex);
          const t = secs(e.vertex, e.at);
          for (const line of e.data.replace(/\n$/, '').split('\n')) write(`#${n} ${t} ${line}\n`);
          break;
        }
        case 'warning':
          write(`WARNING: ${e.message}${e.location ? ` (${e.location.file}:${e.location.line})` : ''}\n`);
          break;
        case 'export.done':
          write(`exported ${e.target} ${e.digest}\n`);
          break;
        case 'progress':
          break;
        default: {
          const never: never = e;
          void never;
        }
      }
    },
  };
}

import type { BuildEvent, EventSink } from '../events.js';
import { bytes, clock, isolationLine, seconds, transfer } from './progress-format.js';
import { ttyProgress } from './tty-progress.js';

/** Renderers that need no terminal: usable for any stream. */
export type ProgressMode = 'plain' | 'rawjson' | 'quiet';
/** What `--progress` accepts. */
export type ProgressFlag = 'auto' | 'tty' | ProgressMode;
/** A renderer with its terminal known: what `auto` resolves to. */
export type RendererMode = 'tty' | ProgressMode;

/** A renderer: events go into `sink`; `close()` draws the final state and stops timers. */
export interface ProgressRenderer {
  readonly sink: EventSink;
  close(): void;
  /**
   * Live views only: draws the current state once more, then nothing until the returned function
   * is called (another program owns the terminal meanwhile); then draws anew below what it left.
   */
  pause?(): () => void;
}

/**
 * `auto` means the live view when stderr is a terminal and the environment is not CI
 * (`CI` set to anything but `false`/`0`), plain lines otherwise; `TERM=dumb` also means plain.
 */
export function resolveProgressMode(flag: ProgressFlag, term: { isTTY: boolean; env: NodeJS.ProcessEnv }): RendererMode {
  if (flag !== 'auto') return flag;
  const ci = term.env.CI !== undefined && term.env.CI !== '' && term.env.CI !== 'false' && term.env.CI !== '0';
  return term.isTTY && !ci && term.env.TERM !== 'dumb' ? 'tty' : 'plain';
}

/** Options of the live view; `now` and the size are injectable so tests can drive it. */
export interface TerminalOptions {
  readonly columns?: number;
  readonly rows?: number;
  /** Colours unless NO_COLOR is set (https://no-color.org). */
  readonly color?: boolean;
  readonly now?: () => number;
  /** Redraw period in ms while steps run; 0 disables the timer (tests redraw on events only). */
  readonly tickMs?: number;
}

/** Opens the renderer for `mode`, writing to `write` (stderr in the CLI). */
export function openProgress(mode: RendererMode, write: (s: string) => void, term: TerminalOptions = {}): ProgressRenderer {
  if (mode === 'tty') return ttyProgress(write, term);
  return { sink: progressSink(mode, write), close() {} };
}

/**
 * Renders the event stream without a terminal. `plain` is BuildKit's CI style: numbered steps
 * (`#3 [2/3] RUN …`, followed by the UTC wall-clock time the step started), their output lines
 * prefixed with seconds since the step started, `DONE 1.2s`/`CACHED`/`ERROR`; byte transfers at
 * most once a second each with size and rate. `rawjson` is one event per line for tools, the
 * same events the other renderers draw. `quiet` drops everything.
 */
export function progressSink(mode: ProgressMode, write: (s: string) => void): EventSink {
  if (mode === 'quiet') return { emit() {} };
  if (mode === 'rawjson') return { emit: (e) => write(JSON.stringify(e) + '\n') };
  return plainSink(write);
}

function plainSink(write: (s: string) => void): EventSink {
  const numbers = new Map<string, number>();
  const started = new Map<string, number>();
  const transfers = new Map<string, { start: number; lastPrinted: number }>();
  const num = (v: string) => {
    let n = numbers.get(v);
    if (n === undefined) numbers.set(v, (n = numbers.size + 1));
    return n;
  };
  const since = (v: string, at: number) => at - (started.get(v) ?? at);
  return {
    emit(e: BuildEvent) {
      switch (e.type) {
        case 'vertex.start':
          started.set(e.vertex, e.at);
          write(`#${num(e.vertex)} ${e.name} (${clock(e.at)})\n`);
          break;
        case 'vertex.cached':
          write(`#${num(e.vertex)} ${e.name} (${clock(e.at)})\n#${num(e.vertex)} CACHED\n`);
          break;
        case 'vertex.done':
          write(`#${num(e.vertex)} DONE ${seconds(since(e.vertex, e.at))}\n`);
          break;
        case 'vertex.error':
          write(`#${num(e.vertex)} ERROR: ${e.message}\n`);
          break;
        case 'vertex.cancelled':
          write(`#${num(e.vertex)} CANCELED\n`);
          break;
        case 'log': {
          const n = num(e.vertex);
          const t = (since(e.vertex, e.at) / 1000).toFixed(3);
          for (const line of e.data.replace(/\n$/, '').split('\n')) write(`#${n} ${t} ${line}\n`);
          break;
        }
        case 'isolation':
          write(`${isolationLine(e)}\n`);
          break;
        case 'warning':
          write(`WARNING: ${e.message}${e.location ? ` (${e.location.file}:${e.location.line})` : ''}\n`);
          break;
        case 'export.done':
          write(`exported ${e.target} ${e.digest}\n`);
          break;
        case 'progress': {
          let t = transfers.get(e.id);
          if (!t) transfers.set(e.id, (t = { start: e.at, lastPrinted: -Infinity }));
          const finished = e.total !== undefined && e.current >= e.total;
          // A line a second is enough for a log; the final size always prints.
          if (!finished && e.at - t.lastPrinted < 1000) break;
          t.lastPrinted = e.at;
          write(`${e.id} ${finished ? `${bytes(e.current)} done ${seconds(e.at - t.start)}` : transfer(e.current, e.total, e.at - t.start)}\n`);
          if (finished) transfers.delete(e.id);
          break;
        }
        default: {
          const never: never = e;
          void never;
        }
      }
    },
  };
}

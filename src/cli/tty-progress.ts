import { isolationLine } from './progress-format.js';
import type { BuildEvent } from '../events.js';
import { seconds, transfer, truncate } from './progress-format.js';
import type { ProgressRenderer, TerminalOptions } from './progress.js';

type Status = 'running' | 'done' | 'cached' | 'error' | 'cancelled';

interface Step {
  readonly name: string;
  status: Status;
  start: number;
  end?: number;
  /** Last output lines while running (a partial last line is kept apart until its newline). */
  tail: string[];
  partial: string;
}

interface Transfer {
  readonly start: number;
  current: number;
  total?: number;
  end?: number;
}

/** Output lines of a running step shown under it, as BuildKit shows them. */
const TAIL_LINES = 6;

const ESC = '\x1b[';
const COLORS: Record<Status | 'header', string> = { running: '34', done: '34', cached: '34', error: '31', cancelled: '33', header: '34' };

/**
 * The live BuildKit-style view for a terminal: a `[+] Building 3.4s (5/7)` header, one line per
 * step with its status and elapsed time, and the last lines of output of running steps. Each
 * frame is written in one `write` that moves the cursor back over the previous frame and
 * overwrites it line by line (clearing each line's rest, then below), so the screen never
 * flashes blank. Lines are cut to the terminal width so wrapping never breaks the cursor math,
 * and a frame taller than the terminal shows its last rows. Warnings and export results print
 * once, below the final frame, on `close()`.
 */
export function ttyProgress(write: (s: string) => void, opts: TerminalOptions): ProgressRenderer {
  const now = opts.now ?? Date.now;
  const columns = Math.max(20, opts.columns ?? 80);
  const rows = Math.max(4, opts.rows ?? 24);
  const color = opts.color ?? true;
  const steps = new Map<string, Step>();
  const transfers = new Map<string, Transfer>();
  const after: string[] = [];
  let isolation: string | undefined;
  const started = now();
  let drawn = 0;
  let closed = false;
  let paused = false;

  const paint = (code: string, s: string) => (color ? `${ESC}${code}m${s}${ESC}0m` : s);

  function frame(final: boolean): string[] {
    const t = now();
    const all = [...steps.values()];
    const finished = all.filter((s) => s.status !== 'running').length;
    const head = `[+] Building ${seconds(t - started)} (${finished}/${all.length})${final ? ' FINISHED' : ''}`;
    const lines: string[] = [paint(COLORS.header, truncate(head, columns))];
    if (isolation) lines.push(truncate(isolation, columns));
    for (const s of all) {
      const time = seconds((s.end ?? t) - s.start);
      const label = s.status === 'cached' ? `CACHED ${s.name}` : s.status === 'error' ? `ERROR ${s.name}` : s.status === 'cancelled' ? `CANCELED ${s.name}` : s.name;
      const room = columns - time.length - 4;
      const left = `=> ${truncate(label, room)}`;
      const text = left + ' '.repeat(Math.max(1, columns - left.length - time.length)) + time;
      lines.push(s.status === 'running' ? text : paint(COLORS[s.status], text));
      if (s.status === 'running' || s.status === 'error') {
        const tail = [...s.tail, ...(s.partial ? [s.partial] : [])].slice(-TAIL_LINES);
        for (const l of tail) lines.push(paint('2', truncate(`=> => # ${l}`, columns)));
      }
    }
    for (const [id, x] of transfers) {
      const time = seconds((x.end ?? t) - x.start);
      lines.push(truncate(`=> ${id} ${transfer(x.current, x.total, (x.end ?? t) - x.start)} ${time}`, columns));
    }
    // The cursor can only move back over rows still on screen.
    return final ? lines : lines.slice(-(rows - 1));
  }

  function draw(final: boolean): void {
    if (paused) return;
    const lines = frame(final);
    let out = drawn > 0 ? `${ESC}${drawn}F` : '';
    for (const l of lines) out += `${l}${ESC}K\n`;
    out += `${ESC}J`;
    write(final ? out : `${ESC}?25l${out}${ESC}?25h`);
    drawn = lines.length;
  }

  let dirty = false;
  const tickMs = opts.tickMs ?? 100;
  const timer = tickMs > 0 ? setInterval(() => {
    if (dirty || [...steps.values()].some((s) => s.status === 'running')) {
      dirty = false;
      draw(false);
    }
  }, tickMs) : undefined;
  timer?.unref();

  const step = (e: { vertex: string; name: string; at: number }): Step => {
    let s = steps.get(e.vertex);
    if (!s) steps.set(e.vertex, (s = { name: e.name, status: 'running', start: e.at, tail: [], partial: '' }));
    return s;
  };

  return {
    sink: {
      emit(e: BuildEvent) {
        if (closed) return;
        switch (e.type) {
          case 'vertex.start':
            step(e).status = 'running';
            break;
          case 'vertex.cached': {
            const s = step(e);
            s.status = 'cached';
            s.end = s.start;
            break;
          }
          case 'vertex.done':
          case 'vertex.error':
          case 'vertex.cancelled': {
            const s = step(e);
            s.status = e.type === 'vertex.done' ? 'done' : e.type === 'vertex.error' ? 'error' : 'cancelled';
            s.end = e.at;
            break;
          }
          case 'log': {
            const s = steps.get(e.vertex);
            if (!s) break;
            const parts = (s.partial + e.data.replace(/\r\n?/g, '\n')).split('\n');
            s.partial = parts.pop() ?? '';
            s.tail = [...s.tail, ...parts].slice(-TAIL_LINES);
            break;
          }
          case 'progress': {
            let x = transfers.get(e.id);
            if (!x) transfers.set(e.id, (x = { start: e.at, current: 0 }));
            x.current = e.current;
            x.total = e.total;
            if (e.total !== undefined && e.current >= e.total) x.end = e.at;
            break;
          }
          case 'isolation':
            isolation = isolationLine(e).replace(/^#0 /, '');
            break;
          case 'warning':
            after.push(`WARNING: ${e.message}${e.location ? ` (${e.location.file}:${e.location.line})` : ''}`);
            break;
          case 'export.done':
            after.push(`exported ${e.target} ${e.digest}`);
            break;
          default: {
            const never: never = e;
            void never;
          }
        }
        dirty = true;
        if (tickMs === 0) draw(false);
      },
    },
    pause() {
      if (closed || paused) return () => undefined;
      draw(false);
      paused = true;
      return () => {
        if (!paused) return;
        paused = false;
        // The cursor is wherever the other program left it: the next frame starts there, a new one.
        drawn = 0;
        dirty = true;
      };
    },
    close() {
      if (closed) return;
      closed = true;
      if (timer) clearInterval(timer);
      paused = false;
      draw(true);
      for (const l of after) write(l + '\n');
    },
  };
}

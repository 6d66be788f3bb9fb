import type { EventSink } from '../events.js';
import { explainSink } from './explain-sink.js';
import { openProgress, resolveProgressMode, type ProgressFlag, type RendererMode } from './progress.js';

/** How a build's progress is shown, from its flags and the config file's default. */
export interface BuildProgressChoice {
  readonly quiet?: boolean;
  /** `--progress`; undefined when not given. */
  readonly progress?: string;
  readonly explain?: boolean;
  /** `progress` from tsbuild.toml. */
  readonly configDefault?: ProgressFlag;
}

/**
 * The renderer for a build on this process's stderr: `--quiet` wins, then `--progress`, then the
 * config file, then `auto`. `--explain` lines are interleaved with plain output; with the live
 * view they would be overwritten, so `--explain` on a terminal falls back to plain.
 */
export function buildProgress(choice: BuildProgressChoice, stderr: NodeJS.WriteStream, env: NodeJS.ProcessEnv): BuildProgress {
  const flag = (choice.progress ?? choice.configDefault ?? 'auto') as ProgressFlag;
  let mode: RendererMode = choice.quiet ? 'quiet' : resolveProgressMode(flag, { isTTY: !!stderr.isTTY, env });
  if (mode === 'tty' && choice.explain) mode = 'plain';
  const gate = heldWrites((s) => void stderr.write(s));
  const renderer = openProgress(mode, gate.write, { columns: stderr.columns, rows: stderr.rows, color: !env.NO_COLOR });
  const events = choice.explain && mode === 'plain' ? explainSink(renderer.sink, gate.write) : renderer.sink;
  return {
    mode,
    events,
    close: () => renderer.close(),
    suspend() {
      const resumeRenderer = renderer.pause?.() ?? (() => undefined);
      const release = gate.hold();
      return () => {
        release();
        resumeRenderer();
      };
    },
  };
}

export interface BuildProgress {
  readonly mode: RendererMode;
  readonly events: EventSink;
  close(): void;
  /**
   * Hands stderr to another program (the --on-error shell): progress output is held (at most
   * HELD_LIMIT bytes) until the returned function is called, then written, and the live view
   * resumes below.
   */
  suspend(): () => void;
}

/** Progress held while a shell owns the terminal; what parallel steps print past this is dropped (and said so). */
const HELD_LIMIT = 1 << 20;

function heldWrites(write: (s: string) => void): { write: (s: string) => void; hold(): () => void } {
  let held: string[] | undefined;
  let size = 0;
  let dropped = 0;
  return {
    write(s) {
      if (!held) return write(s);
      if (size + s.length > HELD_LIMIT) dropped += s.length;
      else {
        held.push(s);
        size += s.length;
      }
    },
    hold() {
      if (held) return () => undefined;
      held = [];
      return () => {
        const out = held ?? [];
        held = undefined;
        size = 0;
        for (const s of out) write(s);
        if (dropped > 0) write(`(${dropped} characters of progress output were dropped while the terminal was in use)\n`);
        dropped = 0;
      };
    },
  };
}

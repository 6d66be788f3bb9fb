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
export function buildProgress(choice: BuildProgressChoice, stderr: NodeJS.WriteStream, env: NodeJS.ProcessEnv): { mode: RendererMode; events: EventSink; close(): void } {
  const flag = (choice.progress ?? choice.configDefault ?? 'auto') as ProgressFlag;
  let mode: RendererMode = choice.quiet ? 'quiet' : resolveProgressMode(flag, { isTTY: !!stderr.isTTY, env });
  if (mode === 'tty' && choice.explain) mode = 'plain';
  const write = (s: string) => void stderr.write(s);
  const renderer = openProgress(mode, write, { columns: stderr.columns, rows: stderr.rows, color: !env.NO_COLOR });
  const events = choice.explain && mode === 'plain' ? explainSink(renderer.sink, write) : renderer.sink;
  return { mode, events, close: () => renderer.close() };
}

import type { BuildEvent, EventSink } from '../events.js';

/**
 * For `--explain` with human-readable progress: before a step that missed the cache starts,
 * prints why (`EXPLAIN [name]: reason`, then changed files or variables, one per line) and
 * passes every event on to the renderer unchanged.
 */
export function explainSink(next: EventSink, write: (s: string) => void): EventSink {
  return {
    emit(e: BuildEvent) {
      if (e.type === 'vertex.start' && e.explain) {
        const x = e.explain;
        let text = `EXPLAIN ${e.name}: ${x.reason}: ${x.message}\n`;
        for (const f of x.files ?? []) text += `EXPLAIN   file ${f.path}: ${f.old ?? '(new)'} -> ${f.new ?? '(removed)'}\n`;
        for (const v of x.vars ?? []) text += `EXPLAIN   var ${v.name}: ${v.old === undefined ? '(unset)' : JSON.stringify(v.old)} -> ${v.new === undefined ? '(unset)' : JSON.stringify(v.new)}\n`;
        write(text);
      }
      next.emit(e);
    },
  };
}

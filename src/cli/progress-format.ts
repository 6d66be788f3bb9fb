/** Human units shared by the plain and tty renderers. Pure functions. */

/** `1.2s`, `0.0s`: durations in BuildKit's style (milliseconds in, one decimal of seconds out). */
export function seconds(ms: number): string {
  return `${(Math.max(0, ms) / 1000).toFixed(1)}s`;
}

/** `512B`, `1.5kB`, `12.3MB`: decimal units, as docker prints transfer sizes. */
export function bytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = n;
  let u = 0;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return u === 0 ? `${v}B` : `${v.toFixed(v < 10 ? 2 : 1)}${units[u]}`;
}

/** `current / total rate`: `3.10MB / 12.0MB 1.20MB/s`; the rate is omitted until time has passed. */
export function transfer(current: number, total: number | undefined, elapsedMs: number): string {
  const size = total === undefined ? bytes(current) : `${bytes(current)} / ${bytes(total)}`;
  return elapsedMs > 0 ? `${size} ${bytes(Math.round((current * 1000) / elapsedMs))}/s` : size;
}

/** `HH:MM:SS` in UTC, so CI logs from machines in different zones line up. */
export function clock(at: number): string {
  return new Date(at).toISOString().slice(11, 19);
}

/** Cuts `s` to `width` display columns (ANSI-free text), marking the cut with `…`. */
export function truncate(s: string, width: number): string {
  if (width <= 0) return '';
  const chars = [...s];
  return chars.length <= width ? s : chars.slice(0, width - 1).join('') + '…';
}

/** The first line of a build's output: which isolation mode its RUN steps use, and why. */
export function isolationLine(e: { readonly mode: string; readonly reason: string }): string {
  return `#0 isolation: ${e.mode} (${e.reason})`;
}

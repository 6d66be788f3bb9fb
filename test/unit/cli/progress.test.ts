import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { BuildEvent } from '../../../src/events.js';
import { openProgress, progressSink, resolveProgressMode } from '../../../src/cli/progress.js';
import { bytes, transfer, truncate } from '../../../src/cli/progress-format.js';

const T0 = Date.UTC(2026, 0, 2, 3, 4, 5);
const A = 'sha256:' + 'a'.repeat(64);
const B = 'sha256:' + 'b'.repeat(64);
const C = 'sha256:' + 'c'.repeat(64);

/** A small build as the engine reports it: one cached step, one RUN with output, an export. */
const EVENTS: BuildEvent[] = [
  { type: 'vertex.start', vertex: A, name: '[internal] load build context', at: T0 },
  { type: 'vertex.done', vertex: A, name: '[internal] load build context', at: T0 + 40 },
  { type: 'vertex.cached', vertex: B, name: '[1/2] FROM busybox', at: T0 + 50 },
  { type: 'vertex.start', vertex: C, name: '[2/2] RUN echo one && echo two', at: T0 + 60 },
  { type: 'log', vertex: C, stream: 1, data: 'one\n', at: T0 + 160 },
  { type: 'log', vertex: C, stream: 2, data: 'two\nthree\n', at: T0 + 1260 },
  { type: 'vertex.done', vertex: C, name: '[2/2] RUN echo one && echo two', at: T0 + 1460 },
  { type: 'warning', message: 'FROM without a tag', location: { file: 'Dockerfile', line: 1 }, at: T0 + 1500 },
  { type: 'export.done', target: 'oci:/tmp/x.tar', digest: 'sha256:' + 'd'.repeat(64), at: T0 + 1600 },
];

function render(mode: 'plain' | 'rawjson' | 'quiet', events: readonly BuildEvent[]): string {
  let out = '';
  const sink = progressSink(mode, (s) => (out += s));
  for (const e of events) sink.emit(e);
  return out;
}

const plain = suite('progress plain');

plain('numbered steps, wall-clock start, per-step output times, DONE/CACHED (golden)', () => {
  assert.fixture(
    render('plain', EVENTS),
    [
      '#1 [internal] load build context (03:04:05)',
      '#1 DONE 0.0s',
      '#2 [1/2] FROM busybox (03:04:05)',
      '#2 CACHED',
      '#3 [2/2] RUN echo one && echo two (03:04:05)',
      '#3 0.100 one',
      '#3 1.200 two',
      '#3 1.200 three',
      '#3 DONE 1.4s',
      'WARNING: FROM without a tag (Dockerfile:1)',
      `exported oci:/tmp/x.tar sha256:${'d'.repeat(64)}`,
      '',
    ].join('\n'),
  );
});

plain('errors and cancellations keep their step number', () => {
  const out = render('plain', [
    { type: 'vertex.start', vertex: A, name: '[1/1] RUN false', at: T0 },
    { type: 'vertex.start', vertex: B, name: '[1/1] RUN sleep 9', at: T0 },
    { type: 'vertex.error', vertex: A, name: '[1/1] RUN false', message: 'exit code 1', at: T0 + 5 },
    { type: 'vertex.cancelled', vertex: B, name: '[1/1] RUN sleep 9', at: T0 + 6 },
  ]);
  assert.match(out, /^#1 ERROR: exit code 1$/m);
  assert.match(out, /^#2 CANCELED$/m);
});

plain('byte transfers: at most one line a second, then size, time and done', () => {
  const id = 'pull sha256:' + 'e'.repeat(12);
  const ev = (current: number, dt: number): BuildEvent => ({ type: 'progress', id, current, total: 4_000_000, at: T0 + dt });
  const out = render('plain', [ev(0, 0), ev(1_000_000, 500), ev(2_000_000, 1000), ev(3_000_000, 1500), ev(4_000_000, 2000)]);
  assert.fixture(out, [`${id} 0B / 4.00MB`, `${id} 2.00MB / 4.00MB 2.00MB/s`, `${id} 4.00MB done 2.0s`, ''].join('\n'));
});

const raw = suite('progress rawjson');

raw('one JSON event per line, exactly the events the renderers get (golden)', () => {
  const out = render('rawjson', EVENTS);
  const lines = out.trimEnd().split('\n');
  assert.is(lines.length, EVENTS.length);
  assert.equal(lines.map((l) => JSON.parse(l)), EVENTS);
  assert.is(lines[4], `{"type":"log","vertex":"${C}","stream":1,"data":"one\\n","at":${T0 + 160}}`);
});

raw('quiet prints nothing', () => {
  assert.is(render('quiet', EVENTS), '');
});

const mode = suite('progress mode');

mode('auto: tty only on a terminal outside CI', () => {
  assert.is(resolveProgressMode('auto', { isTTY: true, env: {} }), 'tty');
  assert.is(resolveProgressMode('auto', { isTTY: false, env: {} }), 'plain');
  assert.is(resolveProgressMode('auto', { isTTY: true, env: { CI: 'true' } }), 'plain');
  assert.is(resolveProgressMode('auto', { isTTY: true, env: { CI: 'false' } }), 'tty');
  assert.is(resolveProgressMode('auto', { isTTY: true, env: { TERM: 'dumb' } }), 'plain');
  assert.is(resolveProgressMode('tty', { isTTY: false, env: { CI: '1' } }), 'tty');
  assert.is(resolveProgressMode('rawjson', { isTTY: true, env: {} }), 'rawjson');
});

const tty = suite('progress tty');

/** Applies the renderer's output to a screen model: cursor-up-to-line-start, erase line/below, newline. */
function screen(out: string): string[] {
  const lines: string[] = [''];
  let row = 0;
  const re = /\x1b\[(\??[0-9;]*)([A-Za-z])|\n|[^\x1b\n]+/g;
  for (const m of out.matchAll(re)) {
    const tok = m[0];
    if (tok === '\n') {
      row++;
      if (lines.length <= row) lines.push('');
    } else if (m[2] === 'F') row = Math.max(0, row - Number(m[1] || 1));
    else if (m[2] === 'K') continue; // text is written whole per line; erase-to-end happens via overwrite below
    else if (m[2] === 'J') lines.length = row + 1;
    else if (m[2]) continue; // colours, cursor visibility
    else lines[row] = tok;
  }
  return lines.filter((l, i) => i < lines.length - 1 || l !== '');
}

/** A step line: name left, time right-aligned to the terminal width. */
const row = (left: string, time: string, width: number) => left + ' '.repeat(width - left.length - time.length) + time;

function liveRun(color: boolean): { out: string; frames: number } {
  let out = '';
  let frames = 0;
  let t = T0;
  const r = openProgress('tty', (s) => ((out += s), frames++), { columns: 60, rows: 20, color, now: () => t, tickMs: 0 });
  for (const e of EVENTS) {
    t = e.at;
    r.sink.emit(e);
  }
  t = T0 + 2000;
  r.close();
  return { out, frames };
}

tty('final screen: header, one line per step with status and time, no output of finished steps', () => {
  const { out } = liveRun(false);
  assert.equal(screen(out), [
    '[+] Building 2.0s (3/3) FINISHED',
    row('=> [internal] load build context', '0.0s', 60),
    row('=> CACHED [1/2] FROM busybox', '0.0s', 60),
    row('=> [2/2] RUN echo one && echo two', '1.4s', 60),
    'WARNING: FROM without a tag (Dockerfile:1)',
    `exported oci:/tmp/x.tar sha256:${'d'.repeat(64)}`,
  ]);
  assert.not.match(out, /\x1b\[[0-9;]*m/, 'no colour codes with color=false (NO_COLOR)');
});

tty('a running step shows its last output lines, cut to the terminal width', () => {
  let out = '';
  let t = T0;
  const r = openProgress('tty', (s) => (out += s), { columns: 40, rows: 20, color: false, now: () => t, tickMs: 0 });
  r.sink.emit({ type: 'vertex.start', vertex: C, name: '[2/2] RUN a-very-long-command-line-that-does-not-fit', at: T0 });
  for (let i = 1; i <= 8; i++) r.sink.emit({ type: 'log', vertex: C, stream: 1, data: `line ${i}\n`, at: T0 + i });
  t = T0 + 500;
  r.sink.emit({ type: 'log', vertex: C, stream: 1, data: 'partial', at: t });
  const s = screen(out);
  assert.is(s[0], '[+] Building 0.5s (0/1)');
  assert.is(s[1], row('=> [2/2] RUN a-very-long-command-l…', '0.5s', 40));
  assert.equal(s.slice(2), ['=> => # line 4', '=> => # line 5', '=> => # line 6', '=> => # line 7', '=> => # line 8', '=> => # partial']);
  for (const l of s) assert.ok(l.length <= 40, `fits: ${l}`);
  r.close();
});

tty('redrawn in place: every frame after the first moves back over the previous one', () => {
  const { out } = liveRun(true);
  const frames = out.split(/(?=\x1b\[\?25l)/).filter((f) => f.includes('[+] Building'));
  assert.ok(frames.length >= EVENTS.length - 1);
  assert.match(out, /\x1b\[34m\[\+\] Building/, 'colours without NO_COLOR');
  assert.not.match(out.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, ''), /\x1b/, 'only well-formed escape sequences');
  // The header appears once on the final screen although it was written once per frame.
  assert.is(screen(out).filter((l) => l.includes('[+] Building')).length, 1);
  assert.ok((out.match(/\x1b\[\d+F/g) ?? []).length >= frames.length - 1);
});

tty('a frame taller than the terminal keeps to its height until the final one', () => {
  let out = '';
  const r = openProgress('tty', (s) => (out += s), { columns: 40, rows: 6, color: false, now: () => T0, tickMs: 0 });
  for (let i = 0; i < 10; i++) r.sink.emit({ type: 'vertex.start', vertex: `sha256:${String(i).repeat(64)}`, name: `step ${i}`, at: T0 });
  const moves = [...out.matchAll(/\x1b\[(\d+)F/g)].map((m) => Number(m[1]));
  assert.ok(Math.max(...moves) <= 5, 'never moves above the screen');
  r.close();
  assert.is(screen(out).length >= 11, true);
});

const fmt = suite('progress format');
fmt('units', () => {
  assert.is(bytes(999), '999B');
  assert.is(bytes(1500), '1.50kB');
  assert.is(bytes(12_345_678), '12.3MB');
  assert.is(transfer(500, 1000, 0), '500B / 1.00kB');
  assert.is(truncate('abcdef', 4), 'abc…');
});

plain.run();
raw.run();
mode.run();
tty.run();
fmt.run();

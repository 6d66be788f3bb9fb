import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { useBuildRoot } from '../helpers/build-root.js';
import { tsbuild, tsbuildOk } from '../helpers/cli.js';
import { rawjsonEvents, started } from '../helpers/progress-events.js';
import type { ProgressEvent } from '../../schemas/types/progress-event.js';

/**
 * The solver's scheduling with real builds: stages the target does not need never run (nor are
 * their bases resolved), independent stages overlap unless --max-parallelism says otherwise,
 * and the first failure cancels the rest.
 */
const test = suite('integration/scheduling');
const env = useBuildRoot(test, 'sched');

/** [start, end] times of the step whose name contains `part`. */
function span(ev: readonly ProgressEvent[], part: string): [number, number] {
  const at = (type: string) => ev.find((e) => e.type === type && 'name' in e && e.name.includes(part))?.at;
  const s = at('vertex.start');
  const d = at('vertex.done');
  assert.ok(s !== undefined && d !== undefined, `${part} ran`);
  return [s!, d!];
}

test('stages the target does not need are neither run nor resolved (an unreachable base is fine)', async () => {
  const ctx = await env.context(`FROM 127.0.0.1:9/nowhere/image:1 AS unreachable
RUN exit 1
FROM busybox AS wanted
RUN echo wanted > /w
FROM busybox AS later
RUN exit 2
`);
  const r = await tsbuildOk(['--root', env.root, 'build', '--progress', 'rawjson', '--target', 'wanted', ctx]);
  assert.equal(started(rawjsonEvents(r.stderr)).filter((n) => n.includes(' RUN ')), ['[wanted 2/2] RUN echo wanted > /w']);
  assert.not.ok(r.stderr.includes('127.0.0.1:9'), 'the unused base was never resolved');
  // Without --target the last stage is built: it fails, and the unreachable stage still never runs.
  const last = await tsbuild(['--root', env.root, 'build', '--progress', 'rawjson', ctx]);
  assert.is(last.code, 1);
  assert.match(last.stderr, /Dockerfile:6/);
  assert.not.ok(last.stderr.includes('127.0.0.1:9'));
});

const TWO_STAGES = `FROM busybox AS a
RUN sleep 1 && echo a > /a
FROM busybox AS b
RUN sleep 1 && echo b > /b
FROM busybox
COPY --from=a /a /a
COPY --from=b /b /b
`;

test('independent stages run at the same time; --max-parallelism 1 runs them one after the other', async () => {
  const parallel = rawjsonEvents((await tsbuildOk(['--root', env.root, 'build', '--progress', 'rawjson', '--no-cache', await env.context(TWO_STAGES)])).stderr);
  const [a0, a1] = span(parallel, '[a 2/2]');
  const [b0, b1] = span(parallel, '[b 2/2]');
  assert.ok(a0 < b1 && b0 < a1, 'the two RUNs overlap');
  const serial = rawjsonEvents((await tsbuildOk(['--root', env.root, 'build', '--progress', 'rawjson', '--no-cache', '--max-parallelism', '1', await env.context(TWO_STAGES)])).stderr);
  const [c0, c1] = span(serial, '[a 2/2]');
  const [d0, d1] = span(serial, '[b 2/2]');
  assert.ok(c1 <= d0 || d1 <= c0, 'one RUN at a time');
});

test('fail-fast: the first failure stops the other stage at once and is the error reported', async () => {
  const ctx = await env.context(`FROM busybox AS slow
RUN echo slow-started && sleep 60
FROM busybox AS broken
RUN sleep 1 && exit 3
FROM busybox
COPY --from=slow /etc/hostname /s
COPY --from=broken /etc/hostname /b
`);
  const t0 = Date.now();
  const r = await tsbuild(['--root', env.root, 'build', '--progress', 'rawjson', ctx]);
  assert.is(r.code, 1);
  assert.ok(Date.now() - t0 < 30_000, 'did not wait for the 60 s sleep');
  const ev = rawjsonEvents(r.stderr);
  assert.ok(ev.some((e) => e.type === 'vertex.error' && e.name.startsWith('[broken 2/2]')), 'the failing step is reported');
  assert.ok(ev.some((e) => e.type === 'vertex.cancelled' && e.name.startsWith('[slow 2/2]')), 'the other is reported cancelled');
  assert.match(r.stderr, /Dockerfile:4/);
  assert.match(r.stderr, /exit code: 3/);
});

test.run();

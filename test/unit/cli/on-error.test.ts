import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { setTimeout as sleep } from 'node:timers/promises';
import { PassThrough } from 'node:stream';
import { parseOnError } from '../../../src/cli/on-error-flag.js';
import { openProgress } from '../../../src/cli/progress.js';
import { buildProgress } from '../../../src/cli/build-progress.js';
import { failureShellArgs, onRunErrorShell } from '../../../src/solver/ops/failure-shell.js';
import { makeVertex, type ExecOp, type Result, type Vertex } from '../../../src/solver/graph.js';
import { solve, type OpHandlers, type StepControl } from '../../../src/solver/scheduler.js';
import { RecordingSink } from '../../../src/events.js';
import { sha256 } from '../../../src/oci/digest.js';
import type { Ctx } from '../../../src/ctx.js';

/** --on-error: the flag, the shell's command line, the solver's fail-fast hand-off and the paused progress. */
const test = suite('cli/on-error');
const TTY = { stdin: true, stdout: true };

test('--on-error values: fail (default), shell, shell:CMD; anything else names the flag', () => {
  assert.equal(parseOnError(undefined, { stdin: false, stdout: false }), { action: 'fail' });
  assert.equal(parseOnError('fail', { stdin: false, stdout: false }), { action: 'fail' });
  assert.equal(parseOnError('shell', TTY), { action: 'shell' });
  assert.equal(parseOnError('shell:ls -l /tmp', TTY), { action: 'shell', command: 'ls -l /tmp' });
  for (const bad of ['', 'debug', 'shell:', 'shell:  ', 'Shell', 'fail:x']) {
    assert.throws(() => parseOnError(bad, TTY), (e: Error) => e.message.startsWith(`--on-error ${JSON.stringify(bad)}: expected fail, shell or shell:CMD`), bad);
  }
});

test('--on-error=shell without a terminal on stdin or stdout is a usage error', () => {
  for (const t of [{ stdin: false, stdout: true }, { stdin: true, stdout: false }, { stdin: false, stdout: false }]) {
    assert.throws(() => parseOnError('shell', t), (e: Error & { code?: string }) => e.code === 'USAGE' && /--on-error=shell needs a terminal .*CI has none/.test(e.message));
  }
  assert.throws(() => parseOnError('shell:id', { stdin: false, stdout: false }), /--on-error=shell:id needs a terminal/);
});

test('the shell: the stage SHELL\'s program alone, or CMD as a shell-form RUN would run it', () => {
  assert.equal(failureShellArgs(undefined, undefined), ['/bin/sh']);
  assert.equal(failureShellArgs(undefined, 'echo $X'), ['/bin/sh', '-c', 'echo $X']);
  assert.equal(failureShellArgs(['/bin/bash', '-eo', 'pipefail', '-c'], undefined), ['/bin/bash']);
  assert.equal(failureShellArgs(['/bin/bash', '-eo', 'pipefail', '-c'], 'ls'), ['/bin/bash', '-eo', 'pipefail', '-c', 'ls']);
});

test('one shell per build: only the first claim wins', () => {
  const on = onRunErrorShell({ withSecrets: false, terminal: { take: () => () => undefined, size: () => undefined, say: () => undefined } });
  assert.is(on.claim(), true);
  assert.is(on.claim(), false);
  assert.is(on.claim(), false);
});

const rootfs = (name: string): Result => ({ kind: 'rootfs', layers: [{ diffId: sha256(name) }] });
const image = makeVertex({ kind: 'image', ref: 'docker.io/library/base:latest', platform: { os: 'linux', architecture: 'amd64' } }, [], { name: 'FROM base' });
const run = (args: string[]) => makeVertex({ kind: 'exec', args, env: [], cwd: '/', user: '', network: 'host' }, [image], { name: `RUN ${args.join(' ')}` });

test('failFast: the other steps are cancelled while the failed one still works under the caller\'s signal, and it is reported once, as the error', async () => {
  const events = new RecordingSink();
  const log: string[] = [];
  let parallelAborted = false;
  const failing = run(['fail']);
  const slow = run(['slow']);
  const exec = async (op: ExecOp, _i: readonly Result[], _v: Vertex, ctx: Ctx, step?: StepControl): Promise<Result> => {
    if (op.args[0] === 'slow') {
      try {
        await sleep(5000, undefined, { signal: ctx.signal });
      } catch (e) {
        parallelAborted = true;
        throw e;
      }
      return rootfs('slow');
    }
    await sleep(20);
    const err = new Error('RUN failed');
    const outer = step!.failFast(err);
    assert.ok(outer, 'the first failure gets a ctx');
    assert.is(ctx.signal.aborted, true, 'the solve is cancelled at once');
    assert.is(step!.failFast(err), undefined, 'a second report gets nothing');
    await sleep(50, undefined, { signal: outer!.signal }); // the shell, still alive
    log.push(`shell done; parallel step aborted: ${parallelAborted}`);
    throw err;
  };
  const handlers: OpHandlers = {
    exec: { run: exec },
    image: { run: async () => rootfs('base') },
    context: { run: async (op) => ({ kind: 'dir', path: op.dir, excludes: [] }) },
    file: { run: async () => rootfs('file') },
    merge: { run: async () => rootfs('merge') },
    http: { run: async () => rootfs('http') },
  };
  const top = makeVertex({ kind: 'merge' }, [failing, slow], { name: 'merge' });
  const err = await solve(top, handlers, { execParallelism: 4, ioParallelism: 4 }, { signal: new AbortController().signal, events }).then(
    () => undefined,
    (e: Error) => e,
  );
  assert.match(String(err?.message), /RUN failed/);
  assert.equal(log, ['shell done; parallel step aborted: true']);
  const errors = events.events.filter((e) => e.type === 'vertex.error');
  assert.is(errors.length, 1);
  assert.is((errors[0] as { vertex: string }).vertex, failing.digest);
  assert.ok(events.events.some((e) => e.type === 'vertex.cancelled' && e.vertex === slow.digest));
  assert.not.ok(events.events.some((e) => e.type === 'vertex.cancelled' && e.vertex === failing.digest));
});

test('the live view pauses: one last frame, nothing while paused, then a fresh frame (no cursor moves over the shell\'s output)', () => {
  let out = '';
  let t = 0;
  const r = openProgress('tty', (s) => (out += s), { columns: 40, rows: 20, color: false, now: () => t, tickMs: 0 });
  r.sink.emit({ type: 'vertex.start', vertex: 'v1', name: 'RUN a', at: 0 });
  r.sink.emit({ type: 'vertex.error', vertex: 'v1', name: 'RUN a', at: 0, message: 'boom' });
  out = '';
  const resume = r.pause!();
  assert.match(out, /ERROR RUN a/, 'the failure is on screen before the shell');
  out = '';
  r.sink.emit({ type: 'vertex.start', vertex: 'v2', name: 'RUN b', at: 0 });
  r.sink.emit({ type: 'vertex.cancelled', vertex: 'v2', name: 'RUN b', at: 0 });
  assert.is(out, '', 'nothing drawn while the shell owns the terminal');
  resume();
  t = 1000;
  r.sink.emit({ type: 'warning', message: 'w', at: 0 });
  assert.not.match(out, /\x1b\[\d+F/, 'the first frame after the pause starts where the cursor is');
  assert.match(out, /CANCELED RUN b/);
  r.close();
});

test('plain progress is held while the terminal is taken, then written in order', () => {
  const stderr = Object.assign(new PassThrough(), { isTTY: false, columns: 80, rows: 24 }) as unknown as NodeJS.WriteStream;
  let written = '';
  (stderr as unknown as PassThrough).on('data', (b: Buffer) => (written += b.toString()));
  const p = buildProgress({ progress: 'plain' }, stderr, {});
  p.events.emit({ type: 'vertex.start', vertex: 'v1', name: 'RUN a', at: 0 });
  const resume = p.suspend();
  const before = written;
  p.events.emit({ type: 'vertex.start', vertex: 'v2', name: 'RUN held', at: 0 });
  return new Promise<void>((done) =>
    setImmediate(() => {
      assert.is(written, before, 'nothing written while suspended');
      assert.not.match(written, /RUN held/);
      resume();
      setImmediate(() => {
        assert.match(written, /RUN a[\s\S]*RUN held/);
        p.close();
        done();
      });
    }),
  );
});

test.run();

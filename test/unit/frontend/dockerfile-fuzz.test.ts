/**
 * Fuzzes the frontend with mutated Dockerfiles (seeds: BuildKit's conformance tables and the
 * examples; see test/helpers/dockerfile-mutator.ts) for FUZZ_SECONDS (default 10): every case
 * must compile or fail with a BuildError, within CASE_MS, without exhausting memory. Cases run in
 * a worker thread so a hang or a heap blow-up is caught and reported, not fatal.
 * A failure prints the seed and case: FUZZ_SEED=<seed> FUZZ_CASE=<i> replays that case alone.
 * Then a few mutated Dockerfiles go through the real CLI (`build --check`): exit 0 or 1, no stack trace.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { randomInt } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { tsbuild } from '../../helpers/cli.js';
import { fuzzCase } from '../../helpers/fuzz-case.js';
import { loadSeeds } from '../../helpers/dockerfile-mutator.js';
import type { FuzzMessage, FuzzWorkerData } from '../../helpers/fuzz-worker.js';

const test = suite('dockerfile fuzz');
const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : randomInt(2 ** 31);
const ONLY = process.env.FUZZ_CASE === undefined ? undefined : Number(process.env.FUZZ_CASE);
const SECONDS = Number(process.env.FUZZ_SECONDS ?? 10);
/** One case may take this long: generous for a 2 MiB Dockerfile on a loaded CI machine. */
const CASE_MS = 8000;
const WORKER = new URL('../../helpers/fuzz-worker.js', import.meta.url);

interface Failure {
  readonly i: number;
  readonly what: string;
}

/** Runs cases from `from` in a worker until `deadline` (or case `ONLY` alone); returns the cases run and the failures. */
function runCases(from: number, deadline: number, failures: Failure[]): Promise<number> {
  return new Promise((resolve) => {
    let current = from;
    let started = 0;
    let ran = 0;
    let finished = false;
    const worker = new Worker(WORKER, { workerData: { seed: SEED, from } satisfies FuzzWorkerData, resourceLimits: { maxOldGenerationSizeMb: 1024, stackSizeMb: 1 } });
    const finish = (next: number | undefined) => {
      if (finished) return;
      finished = true;
      clearInterval(watchdog);
      void worker.terminate();
      // After a killed case, go on in a fresh worker with the next one.
      if (next !== undefined && Date.now() < deadline && ONLY === undefined) void runCases(next, deadline, failures).then((n) => resolve(ran + n));
      else resolve(ran);
    };
    const watchdog = setInterval(() => {
      if (started && Date.now() - started > CASE_MS) {
        failures.push({ i: current, what: `took more than ${CASE_MS} ms` });
        finish(current + 1);
      } else if (Date.now() > deadline) finish(undefined);
    }, 100);
    worker.on('message', (m: FuzzMessage) => {
      if (m.type === 'start') {
        current = m.i;
        started = Date.now();
        return;
      }
      ran++;
      started = 0;
      if (m.type === 'crash') failures.push({ i: m.i, what: m.message });
      if (ONLY !== undefined) finish(undefined);
    });
    worker.on('error', (e) => {
      failures.push({ i: current, what: `worker died: ${e.message}` });
      finish(current + 1);
    });
    worker.on('exit', () => finish(undefined));
  });
}

test(`mutated Dockerfiles compile or fail with a BuildError (seed ${SEED}, ${SECONDS}s)`, async () => {
  const failures: Failure[] = [];
  const ran = await runCases(ONLY ?? 0, Date.now() + SECONDS * 1000, failures);
  if (failures.length) {
    const shown = failures.slice(0, 5).map((f) => `case ${f.i} (FUZZ_SEED=${SEED} FUZZ_CASE=${f.i}): ${f.what.slice(0, 800)}`);
    console.error(`fuzz seed ${SEED}: ${failures.length} of ${ran} cases failed\n${shown.join('\n\n')}`);
    // The failing Dockerfiles are kept for a look (a failed run is the only thing that leaves files).
    const seeds = loadSeeds();
    const dir = await mkdtemp(join(tmpdir(), `tsbuild-fuzz-${SEED}-`));
    for (const f of failures) await writeFile(join(dir, `case-${f.i}.Dockerfile`), fuzzCase(seeds, SEED, f.i).text);
    assert.unreachable(`${failures.length} of ${ran} cases failed (seed ${SEED}); Dockerfiles kept in ${dir}\n${shown.join('\n\n')}`);
  }
  assert.ok(ran > (ONLY === undefined ? 20 : 0), `only ${ran} cases ran`);
  console.log(`  fuzz: ${ran} cases in ${SECONDS}s, seed ${SEED}`);
});

test('mutated Dockerfiles through the CLI: exit 0 or 1, never a stack trace', async () => {
  const work = await mkdtemp(join(tmpdir(), 'tsbuild-fuzz-cli-'));
  try {
    const seeds = loadSeeds();
    for (let i = 0; i < 6; i++) {
      // FROM scratch: a base image would be looked up in a registry.
      const text = fuzzCase(seeds, SEED, 1_000_000 + i).text.replace(/^(\s*FROM\s+)(?!scratch)\S+/gim, '$1scratch');
      const ctx = join(work, `ctx${i}`);
      await writeFile(join(work, `Dockerfile${i}`), text);
      await mkdir(ctx);
      const r = await tsbuild(['--root', join(work, 'root'), 'build', '--check', '-f', join(work, `Dockerfile${i}`), ctx]);
      const where = `CLI case ${i} (FUZZ_SEED=${SEED}), exit ${r.code}:\n${r.stderr.slice(0, 2000)}`;
      assert.ok(r.code === 0 || r.code === 1, where);
      assert.not.match(r.stderr, /^\s+at .+:\d+:\d+\)?$/m, where);
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
});

test.run();

/**
 * Worker thread of the Dockerfile fuzzer (test/unit/frontend/dockerfile-fuzz.test.ts): compiles
 * mutated Dockerfiles one after another and reports each outcome. It runs in a worker so that
 * the test can kill a case that hangs or eats memory without losing the test process.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { compileDockerfile, type CompileOptions, type ImageResolver } from '../../src/frontend/compile.js';
import { BuildError } from '../../src/errors.js';
import { nullSink } from '../../src/events.js';
import type { Digest } from '../../src/oci/digest.js';
import { parseReference } from '../../src/oci/reference.js';
import { fuzzCase } from './fuzz-case.js';
import { loadSeeds } from './dockerfile-mutator.js';

export interface FuzzWorkerData {
  readonly seed: number;
  readonly from: number;
}

export type FuzzMessage =
  | { readonly type: 'start'; readonly i: number }
  | { readonly type: 'done'; readonly i: number; readonly outcome: 'ok' | 'error' }
  | { readonly type: 'crash'; readonly i: number; readonly message: string };

const { seed, from } = workerData as FuzzWorkerData;
const post = (m: FuzzMessage) => parentPort!.postMessage(m);
const ctx = { signal: new AbortController().signal, events: nullSink };

/** What a pull would tell the frontend: a fixed config, with the case's ONBUILD triggers. Reference syntax is checked as the real resolver does. */
function resolver(onBuild: readonly string[]): ImageResolver {
  return {
    async resolve(ref) {
      return {
        ref: parseReference(ref).toString(),
        digest: `sha256:${'a'.repeat(64)}` as Digest,
        config: { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, config: { Env: ['PATH=/bin'], OnBuild: [...onBuild] } },
      };
    },
  };
}

/** A crash: anything but a BuildError, an INTERNAL one (a bug wrapped on its way out), or a JS engine limit in the message. */
function crashOf(e: unknown): string | undefined {
  if (!(e instanceof BuildError)) return `${(e as Error)?.constructor?.name ?? typeof e}: ${(e as Error)?.stack ?? String(e)}`;
  if (e.code === 'INTERNAL') return `BuildError INTERNAL: ${e.message}\n${(e.cause as Error | undefined)?.stack ?? ''}`;
  if (/Maximum call stack|Invalid string length|Invalid array length|out of memory/i.test(e.message)) return `BuildError hiding an engine limit: ${e.message}`;
  return undefined;
}

const seeds = loadSeeds();
for (let i = from; ; i++) {
  const c = fuzzCase(seeds, seed, i);
  const opts: CompileOptions = { dockerfilePath: 'Dockerfile', contextDir: '/ctx', dockerignore: '', buildArgs: c.buildArgs, platform: { os: 'linux', architecture: 'amd64' } };
  post({ type: 'start', i });
  try {
    await compileDockerfile({ path: 'Dockerfile', text: c.text }, opts, resolver(c.onBuild), ctx);
    post({ type: 'done', i, outcome: 'ok' });
  } catch (e) {
    const crash = crashOf(e);
    post(crash ? { type: 'crash', i, message: crash } : { type: 'done', i, outcome: 'error' });
  }
}

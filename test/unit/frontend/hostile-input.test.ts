/**
 * Hostile Dockerfiles: each must fail with a BuildError naming its line (or compile), quickly,
 * never with a stack overflow, an out-of-memory crash or minutes of CPU. One test per bug found.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { compileDockerfile, MAX_INSTRUCTIONS, MAX_STAGES, type CompileOptions } from '../../../src/frontend/compile.js';
import { MAX_DOCKERFILE_BYTES } from '../../../src/frontend/ast.js';
import { BuildError } from '../../../src/errors.js';
import { nullSink } from '../../../src/events.js';
import { fixedImageResolver } from '../../helpers/fixed-image-resolver.js';

const test = suite('frontend: hostile input');
const ctx = { signal: new AbortController().signal, events: nullSink };
const resolver = fixedImageResolver;
const opts: CompileOptions = { dockerfilePath: 'Dockerfile', contextDir: '/ctx', dockerignore: '', buildArgs: {}, platform: { os: 'linux', architecture: 'amd64' } };

/** Compiles `text` within `ms`; returns the BuildError, or undefined when it compiled. */
async function outcome(text: string, ms = 5000): Promise<BuildError | undefined> {
  const started = Date.now();
  try {
    await compileDockerfile({ path: 'Dockerfile', text }, opts, resolver, ctx);
    return undefined;
  } catch (e) {
    if (!(e instanceof BuildError)) throw e;
    assert.is.not(e.code, 'INTERNAL', `an internal error is a bug: ${e.message}`);
    return e;
  } finally {
    assert.ok(Date.now() - started < ms, `took ${Date.now() - started} ms`);
  }
}

async function fails(text: string, line: number, message: RegExp, ms?: number): Promise<void> {
  const e = await outcome(text, ms);
  assert.ok(e, 'should fail');
  assert.is(e!.location?.line, line, `line of ${e!.message}`);
  assert.match(e!.message, message);
}

const nest = (open: string, close: string, n: number, inner = 'x') => `${open.repeat(n)}${inner}${close.repeat(n)}`;

test('nested ${a:-${b:-…}} beyond 64 levels: an error on the line, not a stack overflow', async () => {
  await fails(`FROM busybox\nARG a\nENV X=${nest('${a:-', '}', 5000)}\n`, 3, /variable expansion nested deeper than 64 levels$/);
  await fails(`ARG X=${nest('${a:-', '}', 5000)}\nFROM busybox\n`, 1, /nested deeper than 64 levels/);
  await fails(`FROM busybox\nENV X=${nest('"${a:-', '}"', 3000)}\n`, 2, /nested deeper than 64 levels/);
  await fails(`FROM busybox\nARG a=1\nENV X=${nest('${a/', '/y}', 3000)}\n`, 3, /nested deeper than 64 levels/);
  // 64 levels still work.
  assert.is(await outcome(`FROM busybox\nENV X=${nest('${a:-', '}', 64)}\n`), undefined);
});

test('the error message quotes a huge word shortened', async () => {
  const e = await outcome(`FROM busybox\nENV X=${nest('${a:-', '}', 5000)}\n`);
  assert.ok(e!.message.length < 400, `message of ${e!.message.length} chars`);
});

test('ARGs doubling each other stop at 1 MiB per word instead of exhausting memory', async () => {
  const args = Array.from({ length: 40 }, (_, i) => `ARG a${i + 1}=\${a${i}}\${a${i}}`).join('\n');
  await fails(`ARG a0=xx\n${args}\nFROM busybox\n`, 21, /variable expansion result longer than 1 MiB/);
});

test('many ARGs just under the word limit stop at the Dockerfile budget', async () => {
  const refs = '${b}'.repeat(15);
  const lines = Array.from({ length: 200 }, (_, i) => `ARG c${i}=${refs}`).join('\n');
  await fails(`ARG b=${'x'.repeat(60_000)}\n${lines}\nFROM busybox\n`, 76, /substituted more than 64 MiB in this Dockerfile/, 10_000);
});

test('glob patterns that make a backtracking RegExp exponential are quick', async () => {
  const a = 'a'.repeat(30_000);
  assert.is(await outcome(`FROM busybox\nARG a=${a}\nENV X=\${a%%${'*a'.repeat(50)}b}\n`), undefined);
  assert.is(await outcome(`FROM busybox\nARG a=${a}\nENV X=\${a//${'*'.repeat(20)}a*b/c}\n`), undefined);
});

test('ONBUILD ONBUILD … thousands deep: an error, not a stack overflow', async () => {
  await fails(`FROM busybox\n${'ONBUILD '.repeat(5000)}RUN true\n`, 2, /ONBUILD nested deeper than 16 levels/);
});

test('long runs of blanks or CRs inside a line are linear (were quadratic RegExps)', async () => {
  const blanks = ' '.repeat(60_000);
  await outcome(`# syntax=a${blanks}b\nFROM busybox\n`, 1000);
  await outcome(`# foo=a${blanks}b\nFROM busybox\n`, 1000);
  await outcome(`FROM busybox\nRUN a${'\r'.repeat(60_000)}b\n`, 1000);
  await outcome(`FROM busybox\nRUN a${blanks}b\n`, 1000);
  await outcome(`FROM busybox\nRUN a \\\n${`${blanks}\\\n`.repeat(20)}b\n`, 2000);
});

test(`more than ${MAX_STAGES} stages: an error on the first stage too many`, async () => {
  const chain = Array.from({ length: MAX_STAGES + 10 }, (_, i) => `FROM ${i ? `s${i - 1}` : 'busybox'} AS s${i}\nENV N=${i}`).join('\n');
  await fails(chain, 2 * MAX_STAGES + 1, new RegExp(`more than ${MAX_STAGES} build stages`));
});

test('a chain of stages each based on the one before compiles in linear-ish time', async () => {
  const chain = Array.from({ length: 3000 }, (_, i) => `FROM ${i ? `s${i - 1}` : 'busybox'} AS s${i}\nRUN echo ${i}`).join('\n');
  assert.is(await outcome(chain, 8000), undefined);
});

test('thousands of ARG and ENV lines in a stage convert in linear time (fuzzer: 18k ARG lines took 11 s)', async () => {
  const n = MAX_INSTRUCTIONS - 10;
  assert.is(await outcome('FROM scratch\n' + Array.from({ length: n }, (_, i) => `ARG B${i}=x`).join('\n') + '\nRUN x\n', 3000), undefined);
  assert.is(await outcome('FROM scratch\n' + 'ARG BAR=\n'.repeat(n) + 'RUN x\n', 3000), undefined);
  assert.is(await outcome('FROM scratch\n' + Array.from({ length: n / 2 }, (_, i) => `ARG A${i}=x\nENV B${i}=\${A${i}}`).join('\n') + '\nRUN x\n', 5000), undefined);
});

test(`more than ${MAX_INSTRUCTIONS} instructions: an error on the first one too many`, async () => {
  await fails('FROM scratch\n' + 'ARG BAR=\n'.repeat(MAX_INSTRUCTIONS + 5), MAX_INSTRUCTIONS + 1, new RegExp(`more than ${MAX_INSTRUCTIONS} instructions`));
});

test(`a Dockerfile over ${MAX_DOCKERFILE_BYTES >> 20} MiB is refused up front`, async () => {
  await fails(`FROM busybox\n${'RUN true\n'.repeat(MAX_DOCKERFILE_BYTES / 8)}`, 1, /dockerfile larger than the 2 MiB allowed/);
});

test.run();

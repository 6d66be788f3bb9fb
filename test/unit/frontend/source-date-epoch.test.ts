/**
 * SOURCE_DATE_EPOCH as the Dockerfile compile resolves it (BuildKit's dockerfile2llb epoch.go):
 * the value's forms, build arg over the global ARG default, the seconds put back where the
 * value was so stage ARGs and RUN see them, and errors located at the ARG line.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { compileDockerfile, type CompileOptions } from '../../../src/frontend/compile.js';
import { MAX_EPOCH, parseEpochValue } from '../../../src/frontend/source-date-epoch.js';
import { BuildError } from '../../../src/errors.js';
import { nullSink } from '../../../src/events.js';
import { fixedImageResolver } from '../../helpers/fixed-image-resolver.js';

const test = suite('frontend: SOURCE_DATE_EPOCH');
const ctx = { signal: new AbortController().signal, events: nullSink };

const resolver = fixedImageResolver;
const compile = (text: string, o: Partial<CompileOptions> = {}) =>
  compileDockerfile({ path: 'Dockerfile', text }, { dockerfilePath: 'Dockerfile', contextDir: '/ctx', dockerignore: '', buildArgs: {}, platform: { os: 'linux', architecture: 'amd64' }, ...o }, resolver, ctx);

async function error(text: string, o: Partial<CompileOptions> = {}): Promise<BuildError> {
  const e = await compile(text, o).then(() => undefined, (x: unknown) => x);
  assert.instance(e, BuildError, 'the compile fails with a BuildError');
  return e as BuildError;
}

const at = (s: number) => new Date(s * 1000);
/** The env of the target's RUN. */
function runEnv(p: Awaited<ReturnType<typeof compile>>): readonly string[] {
  const op = p.target!.op;
  if (op.kind !== 'exec') throw new Error(`the target is a ${op.kind}, not a RUN`);
  return op.env;
}

test('parseEpochValue: whole seconds up to 9999-12-31, context; a sign, a fraction, a word or too late is other', () => {
  assert.equal(parseEpochValue('1700000000'), { kind: 'seconds', date: at(1700000000) });
  assert.equal(parseEpochValue('0'), { kind: 'seconds', date: at(0) });
  assert.equal(parseEpochValue(String(MAX_EPOCH)), { kind: 'seconds', date: new Date('9999-12-31T23:59:59Z') });
  assert.equal(parseEpochValue('context'), { kind: 'context' });
  for (const bad of ['-5', '+5', '1.5', '1e9', ' 1', 'Context', 'git', 'now', String(MAX_EPOCH + 1), '9'.repeat(40)]) {
    assert.equal(parseEpochValue(bad), { kind: 'other' }, bad);
  }
});

test('a global ARG default is the epoch when no build arg is given; a build arg wins; an empty build arg means none', async () => {
  const df = 'ARG SOURCE_DATE_EPOCH=1600000000\nFROM busybox\nARG SOURCE_DATE_EPOCH\nRUN echo $SOURCE_DATE_EPOCH\n';
  assert.equal((await compile(df)).sourceDateEpoch, at(1600000000));
  assert.equal((await compile(df, { buildArgs: { SOURCE_DATE_EPOCH: '1700000000' } })).sourceDateEpoch, at(1700000000));
  const none = await compile(df, { buildArgs: { SOURCE_DATE_EPOCH: '' } });
  assert.is(none.sourceDateEpoch, undefined);
  assert.is((await compile('FROM busybox\n')).sourceDateEpoch, undefined);
  // A default in a stage is not the build's epoch (BuildKit reads only build args and global ARGs).
  assert.is((await compile('FROM busybox\nARG SOURCE_DATE_EPOCH=5\n')).sourceDateEpoch, undefined);
});

test('the default may use other global ARGs; the last global default counts', async () => {
  assert.equal((await compile('ARG T=1500000000\nARG SOURCE_DATE_EPOCH=$T\nFROM busybox\n')).sourceDateEpoch, at(1500000000));
  assert.equal((await compile('ARG SOURCE_DATE_EPOCH=1\nARG SOURCE_DATE_EPOCH=2\nARG SOURCE_DATE_EPOCH\nFROM busybox\n')).sourceDateEpoch, at(2));
});

test('context: asked of the injected source time, and its seconds replace the word for stage ARGs and RUN', async () => {
  let asked = 0;
  const contextTime = async () => (asked++, at(1700000000));
  const p = await compile('ARG SOURCE_DATE_EPOCH=context\nFROM busybox\nARG SOURCE_DATE_EPOCH\nRUN echo $SOURCE_DATE_EPOCH\n', { contextTime });
  assert.equal(p.sourceDateEpoch, at(1700000000));
  assert.is(asked, 1);
  assert.ok(runEnv(p).includes('SOURCE_DATE_EPOCH=1700000000'), runEnv(p).join(' '));
  // From a build arg too, and never asked when a number is given.
  const q = await compile('FROM busybox\nARG SOURCE_DATE_EPOCH\nRUN true\n', { buildArgs: { SOURCE_DATE_EPOCH: 'context' }, contextTime });
  assert.ok(runEnv(q).includes('SOURCE_DATE_EPOCH=1700000000'));
  await compile('ARG SOURCE_DATE_EPOCH=context\nFROM busybox\n', { buildArgs: { SOURCE_DATE_EPOCH: '5' }, contextTime });
  assert.is(asked, 2);
});

test('a number with leading zeros reaches RUN as BuildKit formats it', async () => {
  const p = await compile('FROM busybox\nARG SOURCE_DATE_EPOCH\nRUN true\n', { buildArgs: { SOURCE_DATE_EPOCH: '0001700000000' } });
  assert.ok(runEnv(p).includes('SOURCE_DATE_EPOCH=1700000000'), runEnv(p).join(' '));
});

test('a bad Dockerfile default is an error at its ARG line; a bad build arg a usage error', async () => {
  for (const bad of ['not-a-number', '-5', '1.5', String(MAX_EPOCH + 1)]) {
    const e = await error(`# comment\nARG SOURCE_DATE_EPOCH=${bad}\nFROM busybox AS a\n`);
    assert.is(e.code, 'INVALID_INSTRUCTION', bad);
    assert.is(e.location?.line, 2, bad);
    assert.match(e.message, `invalid SOURCE_DATE_EPOCH: ${bad} (ARG SOURCE_DATE_EPOCH: expected a whole number of seconds since 1970-01-01`);
    assert.match(e.message, JSON.stringify(bad));
  }
  const u = await error('FROM busybox\n', { buildArgs: { SOURCE_DATE_EPOCH: 'yesterday' } });
  assert.is(u.code, 'USAGE');
  assert.is(u.location, undefined);
  assert.match(u.message, '--build-arg SOURCE_DATE_EPOCH: expected a whole number');
});

test('context without a source time, or failing, fails at the ARG line', async () => {
  const noTime = await error('ARG SOURCE_DATE_EPOCH=context\nFROM busybox\n');
  assert.is(noTime.location?.line, 1);
  assert.match(noTime.message, 'has no source time');
  const failing = await error('\nARG SOURCE_DATE_EPOCH=context\nFROM busybox\n', {
    contextTime: async () => {
      throw new BuildError('USAGE', 'SOURCE_DATE_EPOCH=context: /ctx is not in a git work tree');
    },
  });
  assert.is(failing.location?.line, 2);
  assert.match(failing.message, 'not in a git work tree');
});

test('a source stage (FROM scratch, ARGs, one ADD <URL>): the expanded URL\'s time, asked once; the stage is not built', async () => {
  const asked: string[] = [];
  const urlTime = async (url: string) => (asked.push(url), at(1650000000));
  const df = 'ARG BASE=https://example.com\nARG SOURCE_DATE_EPOCH=Src\nFROM scratch AS src\nARG V=1\nADD ${BASE}/v${V}.tar.gz /\nFROM busybox\nARG SOURCE_DATE_EPOCH\nRUN true\n';
  const p = await compile(df, { urlTime });
  assert.equal(p.sourceDateEpoch, at(1650000000));
  assert.ok(runEnv(p).includes('SOURCE_DATE_EPOCH=1650000000'));
  assert.equal(asked, ['https://example.com/v1.tar.gz']);
  // A build arg reaches the stage's ARG, and may name the stage itself.
  await compile(df.replace('ARG SOURCE_DATE_EPOCH=Src\n', ''), { urlTime, buildArgs: { SOURCE_DATE_EPOCH: 'src', V: '2' } });
  assert.equal(asked.at(-1), 'https://example.com/v2.tar.gz');
});

test('a source stage that is not FROM scratch + one remote ADD is an error at the offending line', async () => {
  const urlTime = async () => at(1);
  const cases: [string, RegExp, number][] = [
    ['ARG SOURCE_DATE_EPOCH=src\nFROM busybox AS src\nADD https://e.com/a /\nFROM busybox\n', /SOURCE_DATE_EPOCH stage must use FROM scratch \(stage src\)/, 2],
    ['ARG SOURCE_DATE_EPOCH=src\nFROM scratch AS src\nADD https://e.com/a /\nRUN true\nFROM busybox\n', /unsupported RUN instruction/, 4],
    ['ARG SOURCE_DATE_EPOCH=src\nFROM scratch AS src\nADD https://e.com/a /\nADD https://e.com/b /\nFROM busybox\n', /exactly one remote ADD/, 4],
    ['ARG SOURCE_DATE_EPOCH=src\nFROM scratch AS src\nADD https://e.com/a https://e.com/b /\nFROM busybox\n', /exactly one remote ADD source/, 3],
    ['ARG SOURCE_DATE_EPOCH=src\nFROM scratch AS src\nADD a.tar.gz /\nFROM busybox\n', /must be an http\(s\) URL .*"a.tar.gz"/, 3],
    ['ARG SOURCE_DATE_EPOCH=src\nFROM scratch AS src\nFROM busybox\n', /must contain exactly one remote ADD/, 2],
  ];
  for (const [df, re, line] of cases) {
    const e = await error(df, { urlTime });
    assert.match(e.message, re, df);
    assert.is(e.location?.line, line, df);
  }
  const noUrlTime = await error('ARG SOURCE_DATE_EPOCH=src\nFROM scratch AS src\nADD https://e.com/a /\nFROM busybox\n');
  assert.match(noUrlTime.message, "can't ask https://e.com/a");
  const failing = await error('ARG SOURCE_DATE_EPOCH=src\nFROM scratch AS src\nADD https://e.com/a /\nFROM busybox\n', {
    urlTime: async () => {
      throw new BuildError('HTTP_SOURCE', 'SOURCE_DATE_EPOCH: https://e.com/a sent no usable Last-Modified');
    },
  });
  assert.is(failing.location?.line, 1);
});

test.run();

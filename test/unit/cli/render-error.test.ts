import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BuildError } from '../../../src/errors.js';
import { renderError } from '../../../src/cli/render-error.js';
import { editDistance, nearest } from '../../../src/cli/suggest.js';

const test = suite('renderError');
let dir = '';
test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tsbuild-render-'));
  await writeFile(join(dir, 'Dockerfile'), 'FROM busybox\n# comment\nRUN echo one\nRUN echo two \\\n  && false\nCOPY a /b\nENV X=1\n');
});
test.after(() => rm(dir, { recursive: true, force: true }));

test('syntax error: file:line relative to cwd, snippet of two lines around with >>> (exact)', () => {
  const err = new BuildError('UNKNOWN_INSTRUCTION', 'unknown instruction: COPPY', { location: { file: join(dir, 'Dockerfile'), line: 6 }, hint: 'did you mean COPY?' });
  assert.fixture(
    renderError(err, { debug: false, cwd: dir }),
    [
      'error: Dockerfile:6: unknown instruction: COPPY',
      '',
      '--------------------',
      '       4 | RUN echo two \\',
      '       5 |   && false',
      ' >>>   6 | COPY a /b',
      '       7 | ENV X=1',
      '--------------------',
      'hint: did you mean COPY?',
      '',
    ].join('\n'),
  );
});

test('RUN failure: exit code, output tail, every line of a continued instruction marked, default hint', () => {
  const err = new BuildError('RUN_FAILED', 'process "/bin/sh -c echo two && false" did not complete successfully: exit code: 1', {
    location: { file: join(dir, 'Dockerfile'), line: 4, endLine: 5 },
    outputTail: ['two'],
    exitCode: 1,
  });
  assert.fixture(
    renderError(err, { debug: false, cwd: '/' }),
    [
      `error: ${join(dir, 'Dockerfile').slice(1)}:4: process "/bin/sh -c echo two && false" did not complete successfully: exit code: 1`,
      '',
      '------ last output lines ------',
      '  two',
      '-------------------------------',
      '',
      '--------------------',
      '       2 | # comment',
      '       3 | RUN echo one',
      ' >>>   4 | RUN echo two \\',
      ' >>>   5 |   && false',
      '       6 | COPY a /b',
      '       7 | ENV X=1',
      '--------------------',
      'hint: the command exited with code 1; its last output lines are above. Debug it in a shell where it failed: build again with --on-error=shell (from a terminal)',
      '',
    ].join('\n'),
  );
});

test('first line: the snippet starts at line 1; outside cwd the path is absolute', () => {
  const err = new BuildError('DOCKERFILE_SYNTAX', 'bad', { location: { file: join(dir, 'Dockerfile'), line: 1 } });
  const out = renderError(err, { debug: false, cwd: join(dir, 'elsewhere') });
  assert.ok(out.startsWith(`error: ${join(dir, 'Dockerfile')}:1: bad\n`), out);
  assert.match(out, /--------------------\n >>>   1 \| FROM busybox\n       2 \| # comment\n       3 \| RUN echo one\n--------------------\n$/);
});

test('no stack trace unless debug', () => {
  const err = new BuildError('USAGE', 'bad flag');
  assert.is(renderError(err, { debug: false, cwd: dir }), 'error: bad flag\n');
  assert.match(renderError(err, { debug: true, cwd: dir }), /\n\s+at .*render-error\.test\.js/);
  assert.is(renderError(new Error('boom'), { debug: false, cwd: dir }), 'error: boom\n');
});

const sug = suite('suggest');
sug('nearest verb for typos only', () => {
  const verbs = ['build', 'images', 'inspect', 'history', 'tag', 'rmi', 'save', 'load', 'run'];
  assert.is(nearest('buidl', verbs), 'build');
  assert.is(nearest('imagez', verbs), 'images');
  assert.is(nearest('histroy', verbs), 'history');
  assert.is(nearest('.', verbs), undefined);
  assert.is(nearest('mycontext', verbs), undefined);
  assert.is(nearest('build', verbs), undefined, 'an exact verb is not a typo');
  assert.is(editDistance('ab', 'ba'), 1);
});

test.run();
sug.run();

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { contextCommitTime, gitCommitTime } from '../../../src/orchestrator/git-commit-time.js';
import { httpDate } from '../../../src/orchestrator/url-last-modified.js';
import { BuildError, isAbortError } from '../../../src/errors.js';
import { collect } from '../../helpers/cli.js';

/** Where SOURCE_DATE_EPOCH=context and a source stage get their times: real git, real dirs. */

const signal = new AbortController().signal;

test('httpDate: an HTTP date in seconds; nothing usable is undefined', () => {
  assert.equal(httpDate('Tue, 14 Nov 2023 22:13:20 GMT'), new Date(1700000000 * 1000));
  for (const bad of [null, undefined, '', 'yesterday', 'Wed, 31 Dec 1969 23:59:59 GMT', 'Sat, 01 Jan 10000 00:00:00 GMT']) assert.is(httpDate(bad), undefined, String(bad));
});

test('gitCommitTime: undefined outside a work tree, HEAD\'s committer time inside (from a subdirectory), an error for a repository without commits; abortable', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tsbuild-gct-'));
  try {
    assert.is(await gitCommitTime(dir, signal), undefined);
    try {
      await contextCommitTime(dir, signal);
      assert.unreachable('a directory outside git has no commit time');
    } catch (e) {
      assert.instance(e, BuildError);
      assert.match((e as Error).message, `${dir} is not in a git work tree`);
    }
    const git = (args: string[], time = 1700000000) =>
      collect('git', ['-c', 'user.email=t@example.com', '-c', 'user.name=t', ...args], { cwd: dir, env: { GIT_COMMITTER_DATE: `@${time} +0000`, GIT_AUTHOR_DATE: `@${time - 500} +0000`, GIT_CONFIG_GLOBAL: '/dev/null' } });
    await git(['init', '-q']);
    const empty = await gitCommitTime(dir, signal).then(() => undefined, (x: unknown) => x);
    assert.instance(empty, BuildError);
    assert.match((empty as Error).message, /SOURCE_DATE_EPOCH=context: git log in .* failed: fatal: bad revision 'HEAD'/);
    await mkdir(join(dir, 'sub'));
    await writeFile(join(dir, 'sub/f'), 'x');
    await git(['add', '.']);
    await git(['commit', '-q', '-m', 'one']);
    assert.equal(await gitCommitTime(join(dir, 'sub'), signal), new Date(1700000000 * 1000), 'the committer time, not the author time');
    const aborted = AbortSignal.abort();
    const e = await gitCommitTime(dir, aborted).then(() => undefined, (x: unknown) => x);
    assert.ok(isAbortError(e), String(e));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();

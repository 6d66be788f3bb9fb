import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { withSourceDateEpoch } from '../../../src/cli/source-date-epoch.js';
import { BuildError } from '../../../src/errors.js';

/** The CLI's part: which of the flag, --build-arg and the environment becomes the build arg. */

test('precedence: --source-date-epoch > --build-arg > $SOURCE_DATE_EPOCH; the environment becomes a build arg', () => {
  const env = { SOURCE_DATE_EPOCH: '3' };
  assert.equal(withSourceDateEpoch({ SOURCE_DATE_EPOCH: '2', X: 'x' }, '1', env), { SOURCE_DATE_EPOCH: '1', X: 'x' });
  assert.equal(withSourceDateEpoch({ SOURCE_DATE_EPOCH: '2' }, undefined, env), { SOURCE_DATE_EPOCH: '2' });
  assert.equal(withSourceDateEpoch({}, undefined, env), { SOURCE_DATE_EPOCH: '3' });
  assert.equal(withSourceDateEpoch({ X: 'x' }, undefined, {}), { X: 'x' }, 'none: the Dockerfile default may still give one');
  assert.equal(withSourceDateEpoch({}, undefined, { SOURCE_DATE_EPOCH: '' }), {}, 'an empty environment variable is unset');
  assert.equal(withSourceDateEpoch({ SOURCE_DATE_EPOCH: '' }, undefined, env), { SOURCE_DATE_EPOCH: '' }, 'an empty build arg stays: no epoch, as BuildKit');
});

test('git is context for the flag only; context is allowed from every source; a stage name only from --build-arg', () => {
  assert.equal(withSourceDateEpoch({ SOURCE_DATE_EPOCH: 'git' }, undefined, {}), { SOURCE_DATE_EPOCH: 'git' }, 'a stage named git, for the compile to find');
  assert.equal(withSourceDateEpoch({ SOURCE_DATE_EPOCH: 'Src.v1-x_y' }, undefined, {}), { SOURCE_DATE_EPOCH: 'Src.v1-x_y' });
  assert.equal(withSourceDateEpoch({}, 'git', {}), { SOURCE_DATE_EPOCH: 'context' });
  assert.equal(withSourceDateEpoch({}, 'context', {}), { SOURCE_DATE_EPOCH: 'context' });
  assert.equal(withSourceDateEpoch({ SOURCE_DATE_EPOCH: 'context' }, undefined, {}), { SOURCE_DATE_EPOCH: 'context' });
  assert.equal(withSourceDateEpoch({}, undefined, { SOURCE_DATE_EPOCH: 'context' }), { SOURCE_DATE_EPOCH: 'context' });
});

test('a bad value is a usage error naming its source', () => {
  for (const [args, flag, env, source] of [
    [{}, 'yesterday', {}, '--source-date-epoch'],
    [{}, '', {}, '--source-date-epoch'],
    [{ SOURCE_DATE_EPOCH: '-5' }, undefined, {}, '--build-arg SOURCE_DATE_EPOCH'],
    [{}, 'src', {}, '--source-date-epoch'],
    [{}, undefined, { SOURCE_DATE_EPOCH: 'src' }, '$SOURCE_DATE_EPOCH'],
    [{ SOURCE_DATE_EPOCH: '1.5' }, undefined, {}, '--build-arg SOURCE_DATE_EPOCH'],
    [{}, undefined, { SOURCE_DATE_EPOCH: '-5' }, '$SOURCE_DATE_EPOCH'],
    [{}, undefined, { SOURCE_DATE_EPOCH: '253402300800' }, '$SOURCE_DATE_EPOCH'],
  ] as const) {
    try {
      withSourceDateEpoch(args, flag, env);
      assert.unreachable(`${source} accepted a bad value`);
    } catch (e) {
      assert.instance(e, BuildError);
      assert.is((e as BuildError).code, 'USAGE');
      assert.ok((e as BuildError).message.startsWith(`${source}: expected a whole number of seconds since 1970-01-01`), (e as BuildError).message);
    }
  }
  // A bad flag is refused even when the others are fine: the flag is what the user meant.
  assert.throws(() => withSourceDateEpoch({ SOURCE_DATE_EPOCH: '1' }, 'x', {}), /--source-date-epoch: .*"context" or "git", got "x"/);
});

test.run();

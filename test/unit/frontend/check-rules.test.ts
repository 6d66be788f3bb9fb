import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { CHECK_RULES, parseCheckOptions, ruleEnabled, withComments } from '../../../src/frontend/check-rules.js';
import { CopyIgnoredCheck } from '../../../src/frontend/copy-ignored.js';

const test = suite('frontend/check-rules');

test('parseCheckOptions: skip, experimental and error as BuildKit parses them; its error messages', () => {
  const c = parseCheckOptions(' skip = A, B ;experimental=all; error=1');
  assert.equal([[...c.skip], [...c.experimental], c.error], [['A', 'B'], ['all'], true]);
  assert.equal(parseCheckOptions(undefined), parseCheckOptions(''));
  assert.throws(() => parseCheckOptions('skip'), /invalid check option "skip"/);
  assert.throws(() => parseCheckOptions('bogus=1'), /invalid check option "bogus"/);
  assert.throws(() => parseCheckOptions('error=maybe'), /failed to parse check option "error=maybe"/);
});

test('ruleEnabled: experimental rules only when named, untouched by skip=all', () => {
  assert.ok(CHECK_RULES.InvalidDefinitionDescription!.experimental);
  assert.not.ok(ruleEnabled(parseCheckOptions(''), 'InvalidDefinitionDescription'));
  assert.ok(ruleEnabled(parseCheckOptions('skip=all;experimental=InvalidDefinitionDescription'), 'InvalidDefinitionDescription'));
  assert.ok(ruleEnabled(parseCheckOptions('experimental=all'), 'InvalidDefinitionDescription'));
  assert.not.ok(ruleEnabled(parseCheckOptions('skip=all'), 'StageNameCasing'));
  assert.not.ok(ruleEnabled(parseCheckOptions('skip=StageNameCasing'), 'StageNameCasing'));
  assert.ok(ruleEnabled(parseCheckOptions('skip=StageNameCasing'), 'FromAsCasing'));
});

test('withComments: the first # check= comment above an instruction adds to the config; words after it and bad ones are ignored', () => {
  const base = parseCheckOptions('skip=A;error=true');
  const merged = withComments(base, ['a note', 'check=skip=B // why', 'check=skip=C']);
  assert.equal([[...merged.skip], merged.error], [['A', 'B'], true]);
  assert.is(withComments(base, ['check=nonsense']), base);
  assert.is(withComments(base, ['just words']), base);
  assert.ok(ruleEnabled(withComments(base, ['check=experimental=all']), 'InvalidDefinitionDescription'));
});

test('CopyIgnoredCheck: as BuildKit validateCopySourcePath', () => {
  assert.is(CopyIgnoredCheck.of([]), undefined, 'no .dockerignore');
  assert.is(CopyIgnoredCheck.of(['**', '!Dockerfile']), undefined, 'exceptions: not judged');
  const c = CopyIgnoredCheck.of(['Dockerfile', 'dir'])!;
  assert.is(c.excluded('./Dockerfile'), 'Dockerfile');
  assert.is(c.excluded('dir/sub/file'), 'dir/sub/file', 'a parent matches');
  assert.is(c.excluded('other'), undefined);
  assert.is(c.excluded('.'), undefined, 'the root needs *, ** or **/*');
  assert.is(CopyIgnoredCheck.of(['*'])!.excluded('.'), '.');
  assert.is(CopyIgnoredCheck.of(['.*'])!.excluded('.'), undefined);
});

test.run();

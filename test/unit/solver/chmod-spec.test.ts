/** parseChmod: octal and symbolic COPY --chmod modes (chmod(1) semantics, no umask). */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parseChmod } from '../../../src/solver/chmod-spec.js';

const test = suite('solver: --chmod specs');
const apply = (spec: string, mode: number, dir = false): number => parseChmod(spec)!(mode, dir);

test('octal', () => {
  assert.is(apply('755', 0o600), 0o755);
  assert.is(apply('0', 0o777), 0);
  assert.is(parseChmod('10000'), undefined);
  assert.is(parseChmod('64a'), undefined);
});

test('symbolic', () => {
  assert.is(apply('u=rwx,go=rx', 0o600), 0o755);
  assert.is(apply('+x', 0o644), 0o755);
  assert.is(apply('a-w', 0o666), 0o444);
  assert.is(apply('go-rwx', 0o777), 0o700);
  assert.is(apply('a+X', 0o600), 0o600);
  assert.is(apply('a+X', 0o700, true), 0o711);
  assert.is(apply('a+X', 0o744), 0o755);
  assert.is(apply('u+s,g=u', 0o640), 0o4660);
  assert.is(apply('+t', 0o777, true), 0o1777);
  assert.is(apply('u+r-w', 0o200), 0o400);
  assert.is(apply('o=g', 0o750), 0o755);
});

test('invalid symbolic modes', () => {
  for (const s of ['u=rwq', 'z+x', 'u', 'u+x,', 'rwx', '']) assert.is(parseChmod(s), undefined, s);
});

test.run();

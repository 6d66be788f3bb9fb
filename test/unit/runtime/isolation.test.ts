import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { BuildError } from '../../../src/errors.js';
import { chooseIsolation, type Isolation } from '../../../src/runtime/isolation.js';
import type { IsolationProbe } from '../../../src/runtime/isolation-probe.js';
import { parseConfig } from '../../../src/cli/config-parse.js';

const test = suite('isolation: choosing a mode');

const base: IsolationProbe = {
  euid: 0,
  capSysAdmin: true,
  capSysChroot: true,
  inUserNamespace: false,
  seccompFilter: false,
  inContainer: false,
  userNamespaces: true,
  overlayInUserNamespace: true,
  kernel: '6.18.0',
};
/** The environments of issue 07, as the probe sees them. */
const ENV: Record<string, IsolationProbe> = {
  root: base,
  user: { ...base, euid: 1000, capSysAdmin: false, capSysChroot: false },
  capshNoAdmin: { ...base, capSysAdmin: false },
  insideOwnUserns: { ...base, inUserNamespace: true },
  dockerDefault: { ...base, capSysAdmin: false, seccompFilter: true, inContainer: true, userNamespaces: 'unshare: Operation not permitted', overlayInUserNamespace: 'unshare: Operation not permitted' },
  userNoUserns: { ...base, euid: 1000, capSysAdmin: false, capSysChroot: false, userNamespaces: 'unshare: Operation not permitted', overlayInUserNamespace: 'x' },
};

function usage(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.instance(e, BuildError);
    assert.is((e as BuildError).code, 'USAGE');
    return (e as BuildError).message;
  }
  throw new Error('expected a usage error');
}

test('auto picks the best mode each environment allows, and says whether a user namespace must be entered', () => {
  const pick = (p: IsolationProbe) => {
    const c = chooseIsolation(p, 'auto');
    return [c.mode, c.needsUserNamespace];
  };
  assert.equal(pick(ENV.root!), ['overlay', false]);
  assert.equal(pick(ENV.user!), ['rootless', true]);
  assert.equal(pick(ENV.capshNoAdmin!), ['rootless', true]);
  assert.equal(pick(ENV.insideOwnUserns!), ['rootless', false]);
  assert.equal(pick(ENV.dockerDefault!), ['chroot', false]);
  assert.match(chooseIsolation(ENV.dockerDefault!, 'auto').reason, /user namespaces are refused \(unshare: Operation not permitted\)/);
  assert.match(usage(() => chooseIsolation(ENV.userNoUserns!, 'auto')), /no isolation mode works here: this is uid 1000, and user namespaces are refused/);
});

test('a requested mode is given where possible and refused with the reason elsewhere', () => {
  const ok = (p: IsolationProbe, m: Isolation) => chooseIsolation(p, m).mode;
  assert.is(ok(ENV.root!, 'rootless'), 'rootless');
  assert.is(ok(ENV.root!, 'chroot'), 'chroot');
  assert.is(ok(ENV.capshNoAdmin!, 'chroot'), 'chroot');
  assert.is(ok(ENV.insideOwnUserns!, 'chroot'), 'chroot');
  assert.match(usage(() => chooseIsolation(ENV.user!, 'overlay')), /--isolation overlay is not possible here: it needs real root with CAP_SYS_ADMIN, and this is uid 1000/);
  assert.match(usage(() => chooseIsolation(ENV.dockerDefault!, 'rootless')), /--isolation rootless is not possible here: user namespaces are refused/);
  assert.match(usage(() => chooseIsolation(ENV.user!, 'chroot')), /needs root with CAP_SYS_CHROOT, and this is uid 1000/);
});

test('tsbuild.toml [build] isolation is checked', () => {
  assert.equal(parseConfig('[build]\nisolation = "chroot"\n', 'x.toml').config.build, { isolation: 'chroot' });
  assert.throws(() => parseConfig('[build]\nisolation = "vm"\n', 'x.toml'), /x\.toml:2: build\.isolation: expected one of auto, overlay, rootless, chroot, got string "vm"/);
});

test.run();

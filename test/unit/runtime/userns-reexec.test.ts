/**
 * The decision to re-execute tsbuild in a user namespace, and the id maps it writes, on made-up
 * callers (the real re-exec is exercised by test/integration/rootless.test.ts).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { enteredUserNamespace, formatIdMap, planUserNamespace, USERNS_ENV, type UsernsFacts } from '../../../src/runtime/userns-reexec.js';
import { parseSubordinateIds } from '../../../src/runtime/subordinate-ids.js';

const test = suite('user namespace plan');

const ALL_CAPS = (1n << 41n) - 1n;
const NO_SYS_ADMIN = ALL_CAPS & ~(1n << 21n);
const user: UsernsFacts = {
  marker: undefined,
  touchesStore: true,
  isolation: 'auto',
  uid: 1000,
  gid: 1000,
  user: 'alice',
  capEff: 0n,
  userNamespaces: true,
  subuid: { start: 100000, count: 65536 },
  subgid: { start: 200000, count: 65536 },
};

test('real root with CAP_SYS_ADMIN stays where it is', () => {
  const p = planUserNamespace({ ...user, uid: 0, gid: 0, capEff: ALL_CAPS, subuid: undefined, subgid: undefined });
  assert.is(p.enter, false);
});

test('a user with subordinate ids: 0 is the caller, 1..N the first range (uids and gids apart)', () => {
  const p = planUserNamespace(user);
  assert.ok(p.enter);
  if (!p.enter) return;
  assert.is(p.mapping, 'subordinate');
  assert.is(p.writer, 'newidmap');
  assert.is(p.warning, undefined);
  assert.is(formatIdMap(p.uidMap), '0 1000 1\n1 100000 65536\n');
  assert.is(formatIdMap(p.gidMap), '0 1000 1\n1 200000 65536\n');
});

test('root without CAP_SYS_ADMIN (capsh --drop): identity map of the full range, written directly', () => {
  const p = planUserNamespace({ ...user, uid: 0, gid: 0, capEff: NO_SYS_ADMIN, subuid: undefined, subgid: undefined });
  assert.ok(p.enter);
  if (!p.enter) return;
  assert.is(p.mapping, 'identity');
  assert.is(p.writer, 'direct');
  assert.is(formatIdMap(p.uidMap), '0 0 4294967295\n');
  assert.is(formatIdMap(p.gidMap), '0 0 4294967295\n');
});

test('no subordinate ids (or only uids): only the caller is mapped, with one warning line saying what and how to fix', () => {
  for (const facts of [{ ...user, subuid: undefined, subgid: undefined }, { ...user, subgid: undefined }]) {
    const p = planUserNamespace(facts);
    assert.ok(p.enter);
    if (!p.enter) return;
    assert.is(p.mapping, 'single');
    assert.is(formatIdMap(p.uidMap), '0 1000 1\n');
    assert.is(formatIdMap(p.gidMap), '0 1000 1\n');
    assert.ok(p.warning);
    assert.not.match(p.warning!, /\n/, 'one line');
    assert.match(p.warning!, /owned by root in the image/);
    assert.match(p.warning!, /\/etc\/subgid/);
    assert.match(p.warning!, /usermod --add-subuids \S+ --add-subgids \S+ alice/);
  }
});

test('no re-exec: already inside (the marker), verbs without the store, an isolation that needs none, user namespaces disabled', () => {
  assert.is(planUserNamespace({ ...user, marker: '1000:subordinate' }).enter, false, 'never loops');
  assert.is(planUserNamespace({ ...user, touchesStore: false }).enter, false);
  assert.is(planUserNamespace({ ...user, isolation: 'chroot' }).enter, false, '--isolation chroot needs no namespace');
  assert.is(planUserNamespace({ ...user, isolation: 'overlay' }).enter, false, '--isolation overlay fails as it should, outside');
  assert.is(planUserNamespace({ ...user, isolation: 'rootless' }).enter, true);
  assert.is(planUserNamespace({ ...user, userNamespaces: false }).enter, false);
  assert.is(planUserNamespace({ ...user, uid: 0, capEff: NO_SYS_ADMIN, userNamespaces: false }).enter, false);
});

test('root lacking CAP_SETUID too is treated like any user (newuidmap, its own subordinate ids)', () => {
  const p = planUserNamespace({ ...user, uid: 0, gid: 0, capEff: 0n });
  assert.ok(p.enter && p.mapping === 'subordinate' && p.writer === 'newidmap');
});

test('the marker: outer uid and mapping; anything else is no marker', () => {
  assert.equal(enteredUserNamespace({ [USERNS_ENV]: '1000:single' }), { outerUid: 1000, mapping: 'single' });
  assert.equal(enteredUserNamespace({ [USERNS_ENV]: '0:identity' }), { outerUid: 0, mapping: 'identity' });
  assert.is(enteredUserNamespace({}), undefined);
  assert.is(enteredUserNamespace({ [USERNS_ENV]: '1000' }), undefined);
  assert.is(enteredUserNamespace({ [USERNS_ENV]: 'x:single' }), undefined);
});

test.run();

const subids = suite('/etc/subuid parsing');

subids('by name or numeric id, in file order; comments, blank, malformed and empty ranges skipped', () => {
  const text = '# comment\n\nbob:100000:65536\nalice:165536:65536\n1000:300000:10\nalice:bad:1\nalice:400000:0\n  alice:500000:5  \n';
  assert.equal(parseSubordinateIds(text, { name: 'alice', id: 1000 }), [
    { start: 165536, count: 65536 },
    { start: 300000, count: 10 },
    { start: 500000, count: 5 },
  ]);
  assert.equal(parseSubordinateIds(text, { name: undefined, id: 1000 }), [{ start: 300000, count: 10 }]);
  assert.equal(parseSubordinateIds(text, { name: 'carol', id: 1001 }), []);
});

subids('a range past 2^32 grants nothing', () => {
  assert.equal(parseSubordinateIds('alice:4294967000:65536\n', { name: 'alice', id: 1 }), []);
});

subids.run();

/** parseMount: BuildKit's --mount syntax (key aliases, bare booleans, defaults, relative targets, errors). */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { checkMountFrom, parseMount } from '../../../src/frontend/run-mount.js';

const test = suite('frontend: RUN --mount parsing');

test('bind is the default type; source defaults to the root; rw and ro', () => {
  assert.equal(parseMount('target=/src', '/'), { type: 'bind', target: '/src', source: '/', from: undefined, readwrite: false });
  assert.equal(parseMount('type=bind,src=a/b,dst=rel,from=build,rw', '/work'), { type: 'bind', target: '/work/rel', source: '/a/b', from: 'build', readwrite: true });
  assert.is((parseMount('target=/x,rw=true,ro', '/') as { readwrite: boolean }).readwrite, false);
});

test('cache defaults: id = target, shared, 0755 root', () => {
  assert.equal(parseMount('type=cache,target=/var/cache/apt', '/'), {
    type: 'cache', target: '/var/cache/apt', id: '/var/cache/apt', sharing: 'shared', readonly: false, from: undefined, source: '/', mode: 0o755, uid: 0, gid: 0,
  });
  const m = parseMount('type=cache,id=go,target=/go,sharing=locked,mode=0700,uid=10,gid=20', '/');
  assert.equal([m.type, (m as { sharing: string }).sharing, (m as { mode: number }).mode, (m as { uid: number }).uid], ['cache', 'locked', 0o700, 10]);
});

test('secret: target from id, env only, mode default 0400; ssh default id and target', () => {
  assert.equal(parseMount('type=secret,id=tok', '/'), { type: 'secret', id: 'tok', target: '/run/secrets/tok', required: false, mode: 0o400, uid: 0, gid: 0 });
  assert.equal(parseMount('type=secret,id=tok,env=TOKEN,required', '/'), { type: 'secret', id: 'tok', env: 'TOKEN', required: true, mode: 0o400, uid: 0, gid: 0 });
  assert.equal(parseMount('type=ssh', '/'), { type: 'ssh', id: 'default', target: '/run/buildkit/ssh_agent.0', required: false, mode: 0o600, uid: 0, gid: 0 });
  assert.equal(parseMount('type=ssh,mode=741,uid=100,gid=102', '/'), { type: 'ssh', id: 'default', target: '/run/buildkit/ssh_agent.0', required: false, mode: 0o741, uid: 100, gid: 102 });
  // BuildKit's dispatchSecret: source is the id; a relative id names the default file by its base.
  assert.equal(parseMount('type=secret,src=a/tok', '/'), { type: 'secret', id: 'a/tok', target: '/run/secrets/tok', required: false, mode: 0o400, uid: 0, gid: 0 });
});

test('tmpfs size units', () => {
  assert.equal(parseMount('type=tmpfs,target=/t,size=64m', '/'), { type: 'tmpfs', target: '/t', size: 64 * 1024 * 1024 });
});

test('errors as BuildKit words them, with its did-you-mean', () => {
  assert.throws(() => parseMount('type=nfs,target=/x', '/'), /unsupported mount type "nfs"$/);
  assert.throws(() => parseMount('type=bnd,target=/x', '/'), /unsupported mount type "bnd" \(did you mean bind\?\)/);
  assert.throws(() => parseMount('type=bind,target=/x,colour=red', '/'), /unexpected key 'colour' in 'colour=red'$/);
  assert.throws(() => parseMount('type=cache,targte=/x', '/'), /unexpected key 'targte' in 'targte=\/x' \(did you mean target\?\)/);
  assert.throws(() => parseMount('type=bind,target=/x,mode=0700', '/'), /mode not allowed for "bind" type mounts/);
  assert.throws(() => parseMount('type=tmpfs,target=/x,uid=1', '/'), /uid not allowed for "tmpfs" type mounts/);
  assert.throws(() => parseMount('type=bind,target=/x,size=1m', '/'), /unexpected key 'size' for mount type 'bind'/);
  assert.throws(() => parseMount('type=bind,target=/x,required', '/'), /unexpected key 'required' for mount type 'bind'/);
  assert.throws(() => parseMount('type=cache,target=/c,sharing=all', '/'), /unsupported sharing value "all"/);
  assert.throws(() => parseMount('type=cache,target=/c,sharing=privat', '/'), /\(did you mean private\?\)/);
  assert.throws(() => parseMount('type=bind,target=/x,sharing=shared', '/'), /invalid cache sharing set for bind mount/);
  assert.throws(() => parseMount('type=secret,env=TOKEN', '/'), /invalid secret mount. one of source, target required/);
  assert.throws(() => parseMount('type=secret,id=a,src=b', '/'), /both source and id can't be set/);
  assert.throws(() => parseMount('type=ssh,src=x', '/'), /ssh does not support source/);
});

test('no target: the working directory, refused when it is / (BuildKit convert_runmount.go)', () => {
  assert.equal(parseMount('from=binary', '/go/src'), { type: 'bind', target: '/go/src', source: '/', from: 'binary', readwrite: false });
  assert.equal((parseMount('type=cache', '/w') as { target: string; id: string }).target, '/w');
  assert.equal((parseMount('type=cache', '/w') as { id: string }).id, '.');
  assert.equal(parseMount('type=tmpfs', '/t'), { type: 'tmpfs', target: '/t' });
  assert.throws(() => parseMount('type=cache', '/'), /invalid mount target "\/"/);
  assert.throws(() => parseMount('type=bind,target=.', '/'), /invalid mount target "\/"/);
});

test('from with a variable is refused before expansion; values are expanded one by one', () => {
  assert.throws(() => checkMountFrom('from=$STAGE,target=/x'), /'from' doesn't support variable expansion, define alias stage instead/);
  assert.throws(() => checkMountFrom('type=bind,FROM=${X}'), /doesn't support variable expansion/);
  checkMountFrom('from=stage$,target=/x');
  checkMountFrom('target=$X');
  const m = parseMount('target=$T,source=a', '/', (v) => v.replace('$T', '/a,b'));
  assert.equal((m as { target: string }).target, '/a,b');
});

test.run();

/** parseMount: BuildKit's --mount syntax (key aliases, bare booleans, defaults, relative targets, errors). */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parseMount } from '../../../src/frontend/run-mount.js';

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
  assert.equal(parseMount('type=ssh', '/'), { type: 'ssh', id: 'default', target: '/run/buildkit/ssh_agent.0', required: false });
});

test('tmpfs size units', () => {
  assert.equal(parseMount('type=tmpfs,target=/t,size=64m', '/'), { type: 'tmpfs', target: '/t', size: 64 * 1024 * 1024 });
});

test('errors: unknown type, unknown key, key not allowed for the type, missing target, bad sharing', () => {
  assert.throws(() => parseMount('type=nfs,target=/x', '/'), /unsupported mount type "nfs"/);
  assert.throws(() => parseMount('type=bind,target=/x,colour=red', '/'), /unexpected key 'colour'/);
  assert.throws(() => parseMount('type=tmpfs,target=/x,id=a', '/'), /id is not supported for tmpfs/);
  assert.throws(() => parseMount('type=cache', '/'), /requires a target/);
  assert.throws(() => parseMount('type=cache,target=/c,sharing=all', '/'), /unsupported sharing/);
});

test.run();

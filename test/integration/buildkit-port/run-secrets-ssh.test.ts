/**
 * BuildKit's frontend/dockerfile/dockerfile_secrets_test.go and dockerfile_ssh_test.go, ported;
 * plus the issue's secret-masking and BUILDKIT_SANDBOX_HOSTNAME checks.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useBuildRoot } from '../../helpers/build-root.js';
import { tsbuild, tsbuildOk } from '../../helpers/cli.js';
import { rawjsonEvents } from '../../helpers/progress-events.js';

const test = suite('buildkit-port: dockerfile_secrets_test.go, dockerfile_ssh_test.go');
const env = useBuildRoot(test, 'bk-run-secrets');

async function secretFile(value: string): Promise<string> {
  const f = join(env.work, `secret-${Math.random().toString(36).slice(2)}`);
  await writeFile(f, value);
  return f;
}

test('testSecretFileParams: mode, uid and gid of a secret file; no stub left behind', async () => {
  const dir = await env.context(
    'FROM busybox\nRUN --mount=type=secret,required=false,mode=741,uid=100,gid=102,target=/mysecret [ "$(stat -c "%u %g %f" /mysecret)" = "100 102 81e1" ]\nRUN [ ! -f /mysecret ] # check no stub left behind\n',
  );
  await tsbuildOk(['--root', env.root, 'build', '--secret', `id=mysecret,src=${await secretFile('pw')}`, dir]);
});

test('testSecretRequiredWithoutValue: a required secret not given fails with BuildKit\'s words', async () => {
  const dir = await env.context('FROM busybox \n\t\tRUN --mount=type=secret,required,id=mysecret foo');
  const r = await tsbuild(['--root', env.root, 'build', dir]);
  assert.is(r.code, 1);
  assert.match(r.stderr, 'secret mysecret: not found');
  assert.match(r.stderr, /Dockerfile:2/);
});

test('testSecretAsEnviron: env= sets the variable, no file; the step name shows **** for it', async () => {
  const dir = await env.context(
    'FROM busybox\nENV SECRET_ENV=foo\nRUN --mount=type=secret,id=mysecret,env=SECRET_ENV [ "$SECRET_ENV" == "pw" ] && [ ! -f /run/secrets/mysecret ] || false\n',
  );
  const r = await tsbuildOk(['--root', env.root, 'build', '--progress', 'rawjson', '--secret', `id=mysecret,src=${await secretFile('pw')}`, dir]);
  const names = rawjsonEvents(r.stderr).flatMap((e) => (e.type === 'vertex.start' && e.name.includes('/run/secrets/mysecret') ? [e.name] : []));
  assert.ok(names.length > 0, 'the RUN step was seen');
  for (const n of names) assert.match(n, '[ "****" == "pw" ] && ');
});

test('testSecretAsEnvironWithFileMount: env= and target= together', async () => {
  const dir = await env.context('FROM busybox\nRUN --mount=type=secret,id=mysecret,target=/run/secrets/secret,env=SECRET_ENV [ "$SECRET_ENV" == "pw" ] && [ -f /run/secrets/secret ] || false\n');
  await tsbuildOk(['--root', env.root, 'build', '--secret', `id=mysecret,src=${await secretFile('pw')}`, dir]);
});

test('a secret env= variable is **** in the step name, and so is the secret\'s value wherever a build arg puts it', async () => {
  const value = 'sup3r-s3cret-value';
  const dir = await env.context(
    'FROM busybox\nARG TOKEN\nARG OTHER\nRUN --mount=type=secret,id=tok,env=TOKEN echo "token is $TOKEN" > /dev/null && [ -n "$TOKEN" ]\nRUN --mount=type=secret,id=tok echo "other is $OTHER" > /dev/null\n',
  );
  const r = await tsbuildOk(['--root', env.root, 'build', '--progress', 'rawjson', '--build-arg', `TOKEN=${value}`, '--build-arg', `OTHER=${value}`, '--secret', `id=tok,src=${await secretFile(`${value}\n`)}`, dir]);
  const names = rawjsonEvents(r.stderr).flatMap((e) => (e.type === 'vertex.start' ? [e.name] : []));
  const run = names.find((n) => n.includes('token is'));
  assert.ok(run, 'the RUN step was seen');
  assert.match(run, '"token is ****"');
  // Another build arg holding the secret's value (BuildKit would print it): tsbuild masks the value.
  assert.ok(names.some((n) => n.includes('"other is ****"')), 'the other build arg is masked too');
  for (const n of names) assert.not.match(n, value);
});

test('testSSHSocketParams: the ssh socket has the mount\'s owner and mode; the agent socket is untouched', async () => {
  const sockDir = await mkdtemp(join(tmpdir(), 'bk-ssh-'));
  const sock = join(sockDir, 'agent.sock');
  const server = createServer((c) => c.end('agent-hello'));
  await new Promise<void>((r) => server.listen(sock, r));
  try {
    const before = await stat(sock);
    const dir = await env.context(
      'FROM busybox\nRUN --mount=type=ssh,mode=741,uid=100,gid=102 [ "$(stat -c "%u %g %f" $SSH_AUTH_SOCK)" = "100 102 c1e1" ]\nRUN --mount=type=ssh [ "$(stat -c "%u %g %a" $SSH_AUTH_SOCK)" = "0 0 600" ]\n',
    );
    await tsbuildOk(['--root', env.root, 'build', '--ssh', `default=${sock}`, dir]);
    const after = await stat(sock);
    assert.equal([after.uid, after.gid, after.mode], [before.uid, before.gid, before.mode], "the user's agent socket keeps its owner and mode");
  } finally {
    await new Promise((r) => server.close(r));
    await rm(sockDir, { recursive: true, force: true });
  }
});

test('BUILDKIT_SANDBOX_HOSTNAME sets the RUN container\'s hostname (and /etc/hosts)', async () => {
  const dir = await env.context('FROM busybox AS base\nRUN hostname > /h && grep -c myhost /etc/hosts > /hosts\nFROM scratch\nCOPY --from=base /h /hosts /\n');
  const out = join(env.work, 'hostname-out');
  const r = await tsbuildOk(['--root', env.root, 'build', '--build-arg', 'BUILDKIT_SANDBOX_HOSTNAME=myhost', '-o', `type=local,dest=${out}`, dir]);
  assert.is(await readFile(join(out, 'h'), 'utf8'), 'myhost\n');
  assert.is(await readFile(join(out, 'hosts'), 'utf8'), '1\n');
  assert.not.match(r.stderr, 'were not consumed', 'a built-in arg, never reported as unused');
});

test.run();

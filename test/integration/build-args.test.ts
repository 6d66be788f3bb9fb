/**
 * ARG semantics beyond the BuildKit table (issue 02 §3), as real builds: the automatic platform
 * args, proxy build-args kept out of history and the cache key, the warning for a `--build-arg`
 * no ARG consumes, and `ENTRYPOINT []` / `CMD []` written as absent.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFile } from 'node:fs/promises';
import { arch } from 'node:os';
import { join } from 'node:path';
import { useBuildRoot } from '../helpers/build-root.js';
import { tsbuild, tsbuildOk } from '../helpers/cli.js';

const test = suite('integration: build args');
const env = useBuildRoot(test, 'build-args');

async function ociConfig(dir: string): Promise<any> {
  const blob = async (digest: string) => JSON.parse(await readFile(join(dir, 'blobs', ...digest.split(':')), 'utf8'));
  const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8'));
  return blob((await blob(index.manifests[0].digest)).config.digest);
}

const GOARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x' };

test('platform args: declared in a stage they hold the host platform; TARGETOS works in FROM undeclared; ARGs pass to child stages', async () => {
  const ctx = await env.context(
    [
      'FROM busybox AS build-linux',
      'ARG TARGETPLATFORM TARGETOS TARGETARCH BUILDPLATFORM BUILDOS BUILDARCH',
      'RUN echo -n "$TARGETPLATFORM|$TARGETOS|$TARGETARCH|$BUILDPLATFORM|$BUILDOS|$BUILDARCH|$TARGETSTAGE" > /p',
      'FROM busybox AS plain',
      'RUN echo -n "[$TARGETOS]" > /undeclared',
      'FROM build-${TARGETOS}',
      'RUN echo -n "[$TARGETOS]" > /inherited',
      'COPY --from=plain /undeclared /',
      '',
    ].join('\n'),
  );
  const out = join(env.work, 'platform-out');
  await tsbuildOk(['--root', env.root, 'build', '--output', `type=local,dest=${out}`, ctx]);
  const a = GOARCH[arch()] ?? arch();
  const fields = (await readFile(join(out, 'p'), 'utf8')).split('|');
  const plat = new RegExp(`^linux/${a}(/v\\d)?$`); // a variant only on arm
  assert.ok(plat.test(fields[0]!) && plat.test(fields[3]!), fields.join('|'));
  assert.equal([fields[1], fields[2], fields[4], fields[5]], ['linux', a, 'linux', a]);
  assert.is(fields[6], '', 'TARGETSTAGE was not declared');
  assert.is(await readFile(join(out, 'undeclared'), 'utf8'), '[]', 'platform args reach RUN only when declared');
  assert.is(await readFile(join(out, 'inherited'), 'utf8'), '[linux]', 'a stage built on another inherits its ARGs (BuildKit)');
});

test('--platform: the host platform in any spelling builds; a malformed one is a usage error naming the flag', async () => {
  const ctx = await env.context('FROM busybox\nRUN true\n');
  const a = GOARCH[arch()] ?? arch();
  await tsbuildOk(['--root', env.root, 'build', '--platform', `linux/${a}`, ctx]);
  if (a === 'amd64') await tsbuildOk(['--root', env.root, 'build', '--platform', 'Linux/x86_64', ctx]);
  for (const p of ['linux', 'linux//v7', '/']) {
    const r = await tsbuild(['--root', env.root, 'build', '--platform', p, ctx]);
    assert.is(r.code, 2, r.stderr);
    assert.match(r.stderr, `--platform ${p}: invalid platform`);
  }
});

test('proxy build-args: visible in RUN under both spellings, not in history, not in the cache key', async () => {
  const ctx = await env.context('FROM busybox\nRUN echo -n "$HTTP_PROXY|$http_proxy|$NO_PROXY" > /p\n');
  const build = async (proxy: string, name: string) => {
    const out = join(env.work, `${name}-out`);
    const oci = join(env.work, `${name}-oci`);
    const r = await tsbuildOk(['--root', env.root, 'build', '--progress', 'plain', '--build-arg', `http_proxy=${proxy}`, '--build-arg', 'NO_PROXY=np', '--output', `type=local,dest=${out}`, '--output', `type=oci,dest=${oci},tar=false`, ctx]);
    return { p: await readFile(join(out, 'p'), 'utf8'), config: await ociConfig(oci), stderr: r.stderr };
  };
  const first = await build('hp1', 'proxy1');
  assert.is(first.p, 'hp1|hp1|np');
  const runEntry = first.config.history.at(-1).created_by as string;
  assert.ok(runEntry.includes('echo -n'), runEntry);
  assert.not.ok(runEntry.includes('hp1') || runEntry.includes('np'), `proxy values stay out of history: ${runEntry}`);
  assert.not.ok(first.stderr.includes('were not consumed'), 'proxy args are never reported as unused');
  // BuildKit's own check: a changed proxy reuses the cached RUN (its output still says hp1).
  const second = await build('hp2', 'proxy2');
  assert.is(second.p, 'hp1|hp1|np');
});

test('a --build-arg no ARG consumes is reported once, by name', async () => {
  const ctx = await env.context('FROM busybox AS unused\nARG NOTBUILT\nFROM busybox\nARG USED\nRUN true\n');
  const r = await tsbuildOk(['--root', env.root, 'build', '--progress', 'plain', '--build-arg', 'USED=1', '--build-arg', 'ZZZ=2', '--build-arg', 'NOTBUILT=3', ctx]);
  assert.match(r.stderr, 'One or more build-args [NOTBUILT ZZZ] were not consumed');
});

test('ENTRYPOINT [] and CMD [] clear the inherited values and are written as absent', async () => {
  const base = await env.context('FROM busybox\nENTRYPOINT ["/bin/echo"]\nCMD ["hi"]\n');
  await tsbuildOk(['--root', env.root, 'build', '-t', 'with-entrypoint', base]);
  const ctx = await env.context('FROM with-entrypoint\nENTRYPOINT []\nCMD []\n');
  const oci = join(env.work, 'empty-oci');
  await tsbuildOk(['--root', env.root, 'build', '--output', `type=oci,dest=${oci},tar=false`, ctx]);
  const c = (await ociConfig(oci)).config;
  assert.not.ok('Entrypoint' in c, JSON.stringify(c));
  assert.not.ok('Cmd' in c, JSON.stringify(c));
});

test.run();

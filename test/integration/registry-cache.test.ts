import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { useBuildRoot } from '../helpers/build-root.js';
import { tsbuild, tsbuildOk } from '../helpers/cli.js';
import { mountsUnder } from '../helpers/mounts.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { verifyStore } from '../helpers/verify-store.js';
import { tool } from '../helpers/run-tool.js';
import type { ProgressEvent } from '../../schemas/types/progress-event.js';
import { rawjsonEvents, started } from '../helpers/progress-events.js';

/**
 * Sharing the build cache between machines: root A builds and exports its cache (--cache-to),
 * a second, empty root B builds the same Dockerfile from another context directory with
 * --cache-from. Every step must be a hit on B — read from the rawjson stream: a step that ran
 * has a `vertex.start` — and the image digest must be the same (SOURCE_DATE_EPOCH fixed).
 */
const test = suite('integration/registry-cache: --cache-to / --cache-from between roots');
const br = useBuildRoot(test, 'regcache');
let reg: TestRegistry;
const ENV = { SOURCE_DATE_EPOCH: '1700000000' };

test.before(async () => {
  reg = await startRegistry();
  // The base image both roots build on: B starts empty and pulls it from the registry.
  await tsbuildOk(['--root', br.root, 'push', 'busybox', `${reg.host}/base/busybox:1`]);
});
test.after(async () => {
  await reg?.stop();
});

interface Built {
  readonly events: ProgressEvent[];
  readonly digest: string;
  readonly stderr: string;
}

async function build(root: string, ctx: string, extra: string[], env: NodeJS.ProcessEnv = ENV): Promise<Built> {
  const meta = join(ctx, '..', `meta-${Date.now()}-${Math.random()}.json`);
  const r = await tsbuildOk(['--root', root, 'build', '--progress', 'rawjson', '--metadata-file', meta, ...extra, ctx], { env });
  const events = rawjsonEvents(r.stderr);
  const digest = (JSON.parse(await readFile(meta, 'utf8')) as Record<string, string>)['containerimage.digest']!;
  return { events, digest, stderr: r.stderr };
}
const ran = (b: Built) => started(b.events);
const ranRuns = (b: Built) => ran(b).filter((n) => /\bRUN\b/.test(n));

async function withFreshRoot(fn: (root: string) => Promise<void>): Promise<void> {
  const root = await mkdtemp(join(br.work, 'fresh-'));
  try {
    await fn(root);
    assert.equal(mountsUnder(root), [], 'no mount left behind on the fresh root');
    assert.equal(await verifyStore(root), [], 'fresh root consistent');
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

const multiStage = (host: string) => `FROM ${host}/base/busybox:1 AS build
RUN echo built > /artifact
FROM ${host}/base/busybox:1
COPY a.txt /a.txt
RUN cat /a.txt > /copy && echo ran >> /copy
COPY --from=build /artifact /artifact
`;

let firstImage = '';

test('type=registry,mode=max: an empty root gets every step from the cache, same image digest', async () => {
  const files = { 'a.txt': 'hello\n' };
  const ctxA = await br.context(multiStage(reg.host), files);
  const ref = `${reg.host}/cache/app:buildcache`;
  const a = await build(br.root, ctxA, ['--cache-to', `type=registry,ref=${ref},mode=max`]);
  firstImage = a.digest;
  assert.ok(ranRuns(a).length >= 2, `A ran its RUNs: ${ran(a).join(' | ')}`);
  assert.ok(a.events.some((e) => e.type === 'export.done' && /^cache \(registry, \d+ records, \d+ layers\)$/.test(e.target)), a.stderr);
  await withFreshRoot(async (rootB) => {
    const ctxB = await br.context(multiStage(reg.host), files);
    const b = await build(rootB, ctxB, ['--cache-from', `type=registry,ref=${ref}`]);
    assert.equal(ranRuns(b), [], 'no RUN executed on B');
    assert.equal(ran(b), [], 'no step executed on B');
    assert.is(b.digest, a.digest, 'identical image digest');
    // The imported records are now local: B's next build needs no --cache-from.
    const again = await build(rootB, ctxB, []);
    assert.equal(ran(again), []);
  });
});

test('a changed file misses from its COPY on, the steps above it still come from the cache', async () => {
  const ref = `${reg.host}/cache/app:buildcache`;
  await withFreshRoot(async (rootB) => {
    const ctxB = await br.context(multiStage(reg.host), { 'a.txt': 'changed\n' });
    const b = await build(rootB, ctxB, ['--cache-from', `type=registry,ref=${ref}`]);
    const names = ran(b);
    assert.ok(names.some((n) => n.includes('COPY a.txt')), names.join(' | '));
    assert.ok(names.some((n) => n.includes('RUN cat /a.txt')), names.join(' | '));
    assert.not.ok(names.some((n) => n.includes('RUN echo built')), `the build stage came from the cache: ${names.join(' | ')}`);
    // Only the layers of reused steps were downloaded: not those of the steps that missed.
    const manifest = JSON.parse(await readFile(join(br.root, 'store/blobs/sha256', firstImage.slice(7)), 'utf8')) as { layers: { digest: string }[] };
    const have = new Set(await readdir(join(rootB, 'store/blobs/sha256')));
    assert.is(manifest.layers.length, 4, 'base, COPY a.txt, RUN cat, COPY --from');
    for (const l of manifest.layers.slice(1, 3)) assert.not.ok(have.has(l.digest.slice(7)), `layer ${l.digest} of a step that missed was not downloaded`);
  });
});

test('type=local dest/src (mode=min, an OCI layout directory): every step of the final stage cached, same digest', async () => {
  const df = `FROM ${reg.host}/base/busybox:1\nCOPY a.txt /a.txt\nRUN cat /a.txt > /b && echo once >> /b\n`;
  const files = { 'a.txt': 'local cache\n' };
  const dir = join(br.work, 'ci-cache');
  const a = await build(br.root, await br.context(df, files), ['--cache-to', `type=local,dest=${dir}`]);
  const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: unknown[] };
  assert.is(index.manifests.length, 1);
  await withFreshRoot(async (rootC) => {
    const c = await build(rootC, await br.context(df, files), ['--cache-from', `type=local,src=${dir}`]);
    assert.equal(ran(c), []);
    assert.is(c.digest, a.digest);
  });
});

test('type=inline: the pushed image carries its cache; --cache-from the image on an empty root hits every step', async () => {
  const df = `FROM ${reg.host}/base/busybox:1\nCOPY a.txt /a.txt\nRUN cat /a.txt > /i && echo inline >> /i\n`;
  const files = { 'a.txt': 'inline cache\n' };
  const name = `${reg.host}/app/inline:1`;
  const a = await build(br.root, await br.context(df, files), ['--cache-to', 'type=inline', '-t', name, '--push']);
  await withFreshRoot(async (rootB) => {
    // B exports inline too, so its image carries the same cache records: the same digest.
    const b = await build(rootB, await br.context(df, files), ['--cache-from', name, '--cache-to', 'type=inline']);
    assert.equal(ran(b), []);
    assert.is(b.digest, a.digest);
  });
  // An image built without an inline cache is no cache: a warning, the build still runs.
  const plain = await build(br.root, await br.context('FROM busybox\nRUN echo x > /x\n'), ['--cache-from', `type=registry,ref=${reg.host}/base/busybox:1`]);
  assert.ok(plain.events.some((e) => e.type === 'warning' && e.message.includes('no inline cache')), plain.stderr);
});

test('a cached layer the registry lost: a warning, that step runs, the build succeeds', async () => {
  const df = `FROM ${reg.host}/base/busybox:1\nRUN echo lost-layer > /lost\n`;
  const ref = `${reg.host}/cache/lost:c`;
  await build(br.root, await br.context(df), ['--cache-to', `type=registry,ref=${ref}`]);
  // Delete the RUN's layer blob from the registry's storage (the layer that is not the base's).
  const manifest = JSON.parse(await tool('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`])) as { layers: { digest: string }[] };
  const base = JSON.parse(await tool('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/base/busybox:1`])) as { layers: { digest: string }[] };
  const lost = manifest.layers.map((l) => l.digest).filter((d) => !base.layers.some((b) => b.digest === d));
  assert.is(lost.length, 1);
  const hex = lost[0]!.slice(7);
  await rm(join(reg.dataDir, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex), { recursive: true, force: true });
  await withFreshRoot(async (rootB) => {
    const b = await build(rootB, await br.context(df), ['--cache-from', `type=registry,ref=${ref}`]);
    assert.ok(b.events.some((e) => e.type === 'warning' && e.message.includes('not used')), b.stderr);
    assert.is(ranRuns(b).length, 1, 'the RUN whose layer was lost ran');
  });
});

test('the registry cache is a plain OCI artifact: skopeo copies it to a layout, which works as type=local', async () => {
  const layout = join(br.work, 'skopeo-cache');
  await tool('skopeo', ['copy', '--src-tls-verify=false', `docker://${reg.host}/cache/app:buildcache`, `oci:${layout}:copied`]);
  await withFreshRoot(async (rootC) => {
    const c = await build(rootC, await br.context(multiStage(reg.host), { 'a.txt': 'hello\n' }), ['--cache-from', `type=local,src=${layout}`]);
    assert.equal(ran(c), []);
    assert.is(c.digest, firstImage);
  });
});

test('a cache on a registry with basic auth: credentials from docker config.json (tsbuild login) are used both ways', async () => {
  const basic = await startRegistry({ kind: 'htpasswd', user: 'ci', password: 'cache-pw' });
  const dockerConfig = await mkdtemp(join(br.work, 'docker-'));
  const env = { ...ENV, DOCKER_CONFIG: dockerConfig };
  try {
    await tsbuildOk(['login', basic.host, '-u', 'ci', '-p', 'cache-pw'], { env });
    const df = `FROM ${reg.host}/base/busybox:1\nRUN echo authed > /au\n`;
    const ref = `${basic.host}/cache/private:c`;
    const a = await build(br.root, await br.context(df), ['--cache-to', `type=registry,ref=${ref}`], env);
    assert.is(ranRuns(a).length, 1);
    await withFreshRoot(async (rootB) => {
      const b = await build(rootB, await br.context(df), ['--cache-from', `type=registry,ref=${ref}`], env);
      assert.equal(ran(b), []);
      assert.is(b.digest, a.digest);
    });
    // Without the credentials the cache can't be read: a warning, and the RUN runs.
    await withFreshRoot(async (rootC) => {
      const c = await build(rootC, await br.context(df), ['--cache-from', `type=registry,ref=${ref}`], { ...ENV, DOCKER_CONFIG: join(br.work, 'no-such-docker-config') });
      assert.ok(c.events.some((e) => e.type === 'warning' && /--cache-from .*cache not used/.test(e.message)), c.stderr);
      assert.is(ranRuns(c).length, 1);
    });
  } finally {
    await basic.stop();
    await rm(dockerConfig, { recursive: true, force: true });
  }
});

test('--cache-from a cache that does not exist yet: a warning, and the build runs', async () => {
  const ctx = await br.context('FROM busybox\nRUN echo first-ever > /f\n');
  const b = await build(br.root, ctx, ['--cache-from', `type=registry,ref=${reg.host}/cache/none:nothing`]);
  assert.ok(b.events.some((e) => e.type === 'warning' && e.message.includes('--cache-from')), b.stderr);
  assert.equal(ranRuns(b).length, 1);
});

test('bad --cache-to / --cache-from specs are usage errors naming the flag', async () => {
  for (const [flag, spec, msg] of [
    ['--cache-to', 'type=inline-ish', /--cache-to "type=inline-ish": unsupported type/],
    ['--cache-to', 'type=inline,mode=max', /type=inline takes no mode/],
    ['--cache-to', 'type=registry', /needs ref=/],
    ['--cache-to', 'type=local,dest=/x,mode=all', /mode="all": expected min or max/],
    ['--cache-from', 'type=local', /needs src=/],
    ['--cache-from', 'type=registry,ref=x,foo=1', /unknown key "foo"/],
  ] as const) {
    const r = await tsbuild(['--root', br.root, 'build', flag, spec, br.work]);
    assert.is(r.code, 2, r.stderr);
    assert.match(r.stderr, msg);
  }
});

test.run();

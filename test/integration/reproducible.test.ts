import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { lstat, mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { createHash } from 'node:crypto';
import { createGunzip } from 'node:zlib';
import { join } from 'node:path';
import { useBuildRoot } from '../helpers/build-root.js';
import { tsbuildOk, type CliResult } from '../helpers/cli.js';
import { assertSameLayouts, inEveryMode, layoutFiles } from '../helpers/every-mode.js';
import { makeBusyboxRootfs } from '../helpers/busybox-rootfs.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { tool } from '../helpers/run-tool.js';
import { readTar } from '../../src/oci/tar/tar-reader.js';

/**
 * Issue 08, scopes 2 and 3: with SOURCE_DATE_EPOCH, the same Dockerfile and context give the
 * same bytes, whatever the context's file times, the machine's root, the process, TZ or locale.
 */
const test = suite('integration: reproducible builds with SOURCE_DATE_EPOCH');
const env = useBuildRoot(test, 'reproducible');
let reg: TestRegistry;

const EPOCH = 1700000000;
const OLD = 1500000000; // a context file older than the epoch keeps its time: rewrite clamps, never raises
const DOCKERFILE = [
  'FROM busybox',
  'COPY . /src',
  'RUN mkdir -p /out/sub && echo built > /out/stamp && cp /src/a /out/a && ln -s stamp /out/link && rm /bin/true',
  'WORKDIR /app',
  'COPY --chmod=600 b /app/b',
  'USER 1000',
  '',
].join('\n');

test.before(async () => {
  reg = await startRegistry();
});
test.after(async () => {
  await reg?.stop();
});

/** A context with DOCKERFILE and a few files, every time set to `mtime` except `old`. */
async function contextWithTimes(mtime: number): Promise<string> {
  const dir = await env.context(DOCKERFILE, { a: 'a\n', b: 'b\n', 'deep/c': 'c\n', old: 'old\n' });
  for (const p of ['a', 'b', 'deep/c', 'deep', 'Dockerfile', '.']) await utimes(join(dir, p), mtime, mtime);
  await utimes(join(dir, 'old'), OLD, OLD);
  return dir;
}

/** A second root holding the same busybox base (saved from the first and loaded), and nothing else. */
async function freshRootWithSameBase(): Promise<string> {
  const root = await mkdtemp(join(env.work, 'root-b-'));
  const archive = join(env.work, 'busybox.tar');
  await tsbuildOk(['--root', env.root, 'save', '-o', archive, 'busybox']);
  await tsbuildOk(['--root', root, 'load', '-i', archive]);
  return root;
}

async function build(root: string, ctx: string, out: string, extra: string[], processEnv: NodeJS.ProcessEnv): Promise<Record<string, string>> {
  const meta = join(env.work, `meta-${Math.random().toString(36).slice(2)}.json`);
  await tsbuildOk(['--root', root, 'build', '--metadata-file', meta, '--output', `type=oci,dest=${out},tar=false`, ...extra, ctx], { env: processEnv });
  return JSON.parse(await readFile(meta, 'utf8')) as Record<string, string>;
}

interface LayoutImage {
  readonly manifest: { layers: { digest: string }[] };
  readonly config: { created: string; rootfs: { diff_ids: string[] } };
}

async function imageOf(layout: string): Promise<LayoutImage> {
  const blob = async (d: string) => JSON.parse(await readFile(join(layout, 'blobs/sha256', d.slice(7)), 'utf8'));
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const manifest = await blob(index.manifests[0]!.digest);
  return { manifest, config: await blob(manifest.config.digest) };
}

/** path → mtime of every entry of a gzip layer blob in a layout. */
async function layerTimes(layout: string, digest: string): Promise<Map<string, number>> {
  const times = new Map<string, number>();
  for await (const { entry } of readTar(createReadStream(join(layout, 'blobs/sha256', digest.slice(7))).pipe(createGunzip()))) times.set(entry.path, entry.mtime);
  return times;
}

test('two contexts with different file times, two roots, two processes, other TZ and locale: byte-identical layouts and the same pushed digest', async () => {
  const now = Math.floor(Date.now() / 1000);
  const ctxA = await contextWithTimes(now + 3600);
  const ctxB = await contextWithTimes(now - 86400);
  const rootB = await freshRootWithSameBase();
  const outA = join(env.work, 'layout-a');
  const outB = join(env.work, 'layout-b');
  const epochArgs = ['--build-arg', `SOURCE_DATE_EPOCH=${EPOCH}`];
  const metaA = await build(env.root, ctxA, outA, epochArgs, { TZ: 'UTC', LC_ALL: 'C' });
  await new Promise((r) => setTimeout(r, 1100)); // the wall clock moves on between the builds
  const metaB = await build(rootB, ctxB, outB, [], { SOURCE_DATE_EPOCH: String(EPOCH), TZ: 'Pacific/Chatham', LC_ALL: 'C.UTF-8', LANG: 'de_DE.UTF-8' });
  assert.is(metaB['containerimage.digest'], metaA['containerimage.digest']);
  const [filesA, filesB] = [await layoutFiles(outA), await layoutFiles(outB)];
  assert.equal([...filesB.keys()].sort(), [...filesA.keys()].sort());
  for (const [p, bytes] of filesA) assert.ok(bytes.equals(filesB.get(p)!), `${p} differs between the two builds`);

  // The same image pushed from either root lands under one digest.
  const pushed: string[] = [];
  for (const [root, ctx] of [[env.root, ctxA], [rootB, ctxB]] as const) {
    const meta = join(env.work, 'push-meta.json');
    await tsbuildOk(['--root', root, 'build', '--metadata-file', meta, '--output', `type=registry,name=${reg.host}/repro/app:1`, '--build-arg', `SOURCE_DATE_EPOCH=${EPOCH}`, ctx]);
    pushed.push((JSON.parse(await readFile(meta, 'utf8')) as Record<string, string>)['containerimage.digest']!);
  }
  assert.is(pushed[1], pushed[0]);
  const raw = await tool('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/repro/app:1`]);
  assert.is(`sha256:${createHash('sha256').update(raw).digest('hex')}`, pushed[0]);
  await rm(rootB, { recursive: true, force: true });
});

test('--no-cache twice gives the same digest', async () => {
  const ctx = await contextWithTimes(Math.floor(Date.now() / 1000));
  const args = ['--no-cache', '--build-arg', `SOURCE_DATE_EPOCH=${EPOCH}`];
  const first = await build(env.root, ctx, join(env.work, 'nc-1'), args, {});
  await new Promise((r) => setTimeout(r, 1100));
  const second = await build(env.root, ctx, join(env.work, 'nc-2'), args, {});
  assert.is(second['containerimage.digest'], first['containerimage.digest']);
});

test('this build\'s layers are clamped to the epoch, the base image\'s are unchanged byte for byte: skopeo and umoci agree', async () => {
  const ctx = await contextWithTimes(Math.floor(Date.now() / 1000));
  const out = join(env.work, 'clamped');
  await build(env.root, ctx, out, ['--build-arg', `SOURCE_DATE_EPOCH=${EPOCH}`], {});
  await tsbuildOk(['--root', env.root, 'save', '-o', join(env.work, 'base.tar'), '--format', 'oci', 'busybox']);
  const baseLayout = join(env.work, 'base-layout');
  await mkdir(baseLayout, { recursive: true });
  await tool('tar', ['-xf', join(env.work, 'base.tar'), '-C', baseLayout]);
  const base = await imageOf(baseLayout);
  const img = await imageOf(out);
  const baseCount = base.manifest.layers.length;
  assert.equal(img.manifest.layers.slice(0, baseCount).map((l) => l.digest), base.manifest.layers.map((l) => l.digest), 'base layers are the base image\'s own blobs');
  // The base was built a moment ago: its files are newer than the epoch and must stay so.
  const baseTimes = await layerTimes(out, img.manifest.layers[0]!.digest);
  assert.ok(Math.max(...baseTimes.values()) > EPOCH, 'the base layer keeps its (later) times');
  for (const layer of img.manifest.layers.slice(baseCount)) {
    for (const [p, t] of await layerTimes(out, layer.digest)) {
      assert.ok(t <= EPOCH, `${p}: ${t} is after the epoch`);
      if (p === 'src/old') assert.is(t, OLD, 'an older time is kept');
    }
  }

  const inspected = JSON.parse(await tool('skopeo', ['inspect', `oci:${out}`])) as { Created: string; Layers: string[] };
  assert.is(inspected.Created, new Date(EPOCH * 1000).toISOString().replace('.000', ''));
  assert.equal(inspected.Layers, img.manifest.layers.map((l) => l.digest));

  const bundle = join(env.work, 'bundle');
  await tool('skopeo', ['copy', `oci:${out}`, `oci:${out}:repro`]);
  await tool('umoci', ['unpack', '--image', `${out}:repro`, bundle]);
  const mtime = async (p: string): Promise<number> => Math.floor((await lstat(join(bundle, 'rootfs', p))).mtimeMs / 1000);
  for (const p of ['src/a', 'src/deep/c', 'out/stamp', 'out/sub', 'app', 'app/b']) assert.is(await mtime(p), EPOCH, `${p} carries the epoch`);
  assert.is(await mtime('src/old'), OLD);
  assert.ok((await mtime('bin/busybox')) > EPOCH, 'a base file keeps its time');
  await rm(bundle, { recursive: true, force: true });
});

test('rewrite-timestamp=false keeps the layers as built; local and tar outputs carry the epoch on every file', async () => {
  const ctx = await contextWithTimes(Math.floor(Date.now() / 1000) + 100);
  const asBuilt = join(env.work, 'as-built');
  const local = join(env.work, 'local-out');
  const tarOut = join(env.work, 'rootfs.tar');
  await tsbuildOk([
    '--root', env.root, 'build', '--build-arg', `SOURCE_DATE_EPOCH=${EPOCH}`,
    '--output', `type=oci,dest=${asBuilt},tar=false,rewrite-timestamp=false`,
    '--output', `type=local,dest=${local}`,
    '--output', `type=tar,dest=${tarOut}`,
    ctx,
  ]);
  const img = await imageOf(asBuilt);
  const copyLayer = await layerTimes(asBuilt, img.manifest.layers[1]!.digest);
  assert.ok(copyLayer.get('src/a')! > EPOCH, 'as built, COPY keeps the context\'s time');
  assert.is(img.config.created, new Date(EPOCH * 1000).toISOString(), 'the config still carries the epoch');
  for (const p of ['src/a', 'out/stamp', 'bin/busybox', 'src/old']) {
    assert.is(Math.floor((await lstat(join(local, p))).mtimeMs / 1000), EPOCH, `local ${p}`);
  }
  const times = new Set<number>();
  for await (const { entry } of readTar(createReadStream(tarOut))) times.add(entry.mtime);
  assert.equal([...times], [EPOCH]);
});

test('root, root without CAP_SYS_ADMIN and a user with subordinate ids build the same bytes, base image included', async () => {
  const epoch = { SOURCE_DATE_EPOCH: String(EPOCH) };
  let ctx = '';
  const layouts = await inEveryMode(
    epoch,
    async (shared) => {
      ctx = join(shared, 'ctx');
      await mkdir(join(ctx, 'deep'), { recursive: true });
      await makeBusyboxRootfs(join(ctx, 'rootfs'));
      await writeFile(join(ctx, 'Base.Dockerfile'), 'FROM scratch\nCOPY rootfs/ /\nCMD ["sh"]\n');
      await writeFile(join(ctx, 'Dockerfile'), DOCKERFILE);
      for (const f of ['a', 'b', 'old', 'deep/c']) await writeFile(join(ctx, f), `${f}\n`);
      await tool('chmod', ['-R', 'a+rX', ctx]);
    },
    async (mode) => {
      const ok = (r: CliResult, what: string): void => assert.is(r.code, 0, `${mode.name}: ${what}: ${r.stderr}`);
      ok(await mode.run([...mode.rootArgs, 'build', '-f', join(ctx, 'Base.Dockerfile'), '-t', 'busybox', ctx]), 'base');
      ok(await mode.run([...mode.rootArgs, 'build', '--output', `type=oci,dest=${join(mode.out, 'img')},tar=false`, ctx]), 'image');
      return layoutFiles(join(mode.out, 'img'));
    },
  );
  assertSameLayouts(layouts);
});

test.run();

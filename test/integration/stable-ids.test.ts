import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { useBuildRoot } from '../helpers/build-root.js';
import { tsbuild, tsbuildOk } from '../helpers/cli.js';

/** Issue 08, scope 1: a build whose every step is a cache hit makes the same image as the build that made the cache. */
const test = suite('integration: stable image IDs on cached rebuilds');
const env = useBuildRoot(test, 'stable-ids');

interface Built {
  readonly id: string;
  readonly manifest: string;
  readonly config: { created: string; history: { created?: string; created_by?: string; empty_layer?: boolean }[] };
  readonly stderr: string;
}

async function build(dir: string, extra: string[] = [], opts: { env?: NodeJS.ProcessEnv } = {}): Promise<Built> {
  const meta = join(env.work, 'meta.json');
  const r = await tsbuildOk(['--root', env.root, 'build', '--progress', 'plain', '--metadata-file', meta, ...extra, dir], opts);
  const m = JSON.parse(await readFile(meta, 'utf8')) as Record<string, string>;
  return { id: m['containerimage.config.digest']!, manifest: m['containerimage.digest']!, config: await configOf(m['containerimage.config.digest']!), stderr: r.stderr };
}

/** Dockerfile steps (not the internal loads) that ran rather than came from the cache, from plain progress. */
function rebuiltSteps(plain: string): string[] {
  const names = new Map<string, string>();
  for (const m of plain.matchAll(/^#(\d+) (\[.*?\] .*) \(\d\d:\d\d:\d\d\)$/gm)) names.set(m[1]!, m[2]!);
  return [...plain.matchAll(/^#(\d+) DONE/gm)].map((m) => names.get(m[1]!) ?? `#${m[1]}`).filter((n) => !n.startsWith('[internal]'));
}

/** The config blob straight from the store (an OCI layout). */
async function configOf(digest: string): Promise<Built['config']> {
  return JSON.parse(await readFile(join(env.root, 'store/blobs/sha256', digest.slice('sha256:'.length)), 'utf8')) as Built['config'];
}

const DOCKERFILES: Record<string, string> = {
  'COPY only': 'FROM busybox\nCOPY a /a\nENV X=1\nCOPY b /b\n',
  RUN: 'FROM busybox\nENV GREETING=hi\nRUN echo $GREETING > /g && mkdir -p /d && touch /d/x\nWORKDIR /w\nRUN rm /d/x\nLABEL k=v\n',
  multistage: 'FROM busybox AS a\nRUN echo a > /a\nFROM busybox\nCOPY --from=a /a /from-a\nRUN cat /from-a > /b\nCMD ["cat", "/b"]\n',
};

for (const [name, dockerfile] of Object.entries(DOCKERFILES)) {
  test(`${name}: the cached rebuild has the same image ID, manifest and history times; a change makes a new one`, async () => {
    const dir = await env.context(dockerfile, { a: 'a\n', b: 'b\n' });
    const first = await build(dir);
    assert.ok(rebuiltSteps(first.stderr).length > 0, 'the first build runs its steps (and the parser sees them)');
    await new Promise((r) => setTimeout(r, 1100)); // "now" moves on: a wall-clock time would show
    const again = await build(dir);
    assert.equal(rebuiltSteps(again.stderr), [], 'every step a cache hit');
    assert.is(again.id, first.id);
    assert.is(again.manifest, first.manifest);
    assert.equal(again.config.history, first.config.history);
    // The image's time is its last step's, not the build's.
    assert.is(first.config.created, first.config.history.at(-1)!.created);
    await writeFile(join(dir, 'b'), 'changed\n');
    await writeFile(join(dir, 'Dockerfile'), `${dockerfile}LABEL changed=1\n`);
    const changed = await build(dir);
    assert.is.not(changed.id, first.id);
  });
}

test('ONBUILD: the child built twice on the same base is the same image', async () => {
  const base = await env.context('FROM busybox\nONBUILD RUN echo triggered > /onbuild\n');
  await tsbuildOk(['--root', env.root, 'build', '-t', 'onbuild-base', base]);
  const child = await env.context('FROM onbuild-base\nRUN cat /onbuild > /copy\n');
  const first = await build(child);
  await new Promise((r) => setTimeout(r, 1100));
  const again = await build(child);
  assert.is(again.id, first.id);
  assert.is(again.manifest, first.manifest);
});

test('SOURCE_DATE_EPOCH sets this build\'s steps and the image, and leaves the base image\'s history times alone', async () => {
  const dir = await env.context('FROM busybox\nRUN echo x > /x\nENV A=1\n');
  const plain = await build(dir);
  const epoch = await build(dir, ['--no-cache'], { env: { SOURCE_DATE_EPOCH: '1700000000' } });
  const stamp = new Date(1700000000 * 1000).toISOString();
  assert.is(epoch.config.created, stamp);
  const ours = epoch.config.history.slice(-2);
  assert.equal(ours.map((h) => h.created), [stamp, stamp]);
  const baseEntries = epoch.config.history.length - 2;
  assert.equal(epoch.config.history.slice(0, baseEntries), plain.config.history.slice(0, baseEntries));
});

test('SOURCE_DATE_EPOCH from --build-arg wins over the environment; a bad value is a usage error naming its source', async () => {
  const dir = await env.context('FROM busybox\nRUN echo y > /y\n');
  const fromArg = await build(dir, ['--no-cache', '--build-arg', 'SOURCE_DATE_EPOCH=1600000000'], { env: { SOURCE_DATE_EPOCH: '1700000000' } });
  assert.is(fromArg.config.created, new Date(1600000000 * 1000).toISOString());
  assert.not.match(fromArg.stderr, /were not consumed/);
  for (const [args, envValue, source] of [
    [['--build-arg', 'SOURCE_DATE_EPOCH=yesterday'], undefined, '--build-arg SOURCE_DATE_EPOCH'],
    [[], '-5', '\\$SOURCE_DATE_EPOCH'],
    [[], '1.5', '\\$SOURCE_DATE_EPOCH'],
  ] as const) {
    const r = await tsbuild(['--root', env.root, 'build', ...args, dir], envValue === undefined ? {} : { env: { SOURCE_DATE_EPOCH: envValue } });
    assert.is(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`${source}: expected a whole number of seconds since 1970-01-01`));
  }
});

test.run();

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeBusyboxRootfs } from '../helpers/busybox-rootfs.js';
import { busyboxContext, inEveryMode, modeContext, type ModeRun } from '../helpers/every-mode.js';
import { tool } from '../helpers/run-tool.js';
import { diffTrees, snapshotTree } from '../helpers/tree-compare.js';
import { tsbuild } from '../helpers/cli.js';

/**
 * Issue 11, part 2: `--squash` (the layers a build adds become one, on the base image's) and
 * `--squash-all` (one layer in all), as podman has them. The squashed image must hold exactly
 * the filesystem of the unsquashed one — deletions of base files, a directory deleted and made
 * again, a directory replaced within one step — which umoci, unpacking both, decides; history
 * keeps every entry (the squashed ones marked empty_layer, the last carrying the layer), and
 * the cache still works per step.
 */

// The base is a stage, so every isolation mode builds it in its own root without a registry.
const DOCKERFILE = `FROM scratch AS base
COPY rootfs/ /
RUN mkdir /base-dir && echo x > /base-dir/x && echo kept > /base-file

FROM base
RUN mkdir -p /d && echo a > /d/a && echo keep > /keep
ENV X=1
RUN rm /bin/true /base-file && rm -r /d && mkdir /d && echo b > /d/b && rm -r /base-dir
RUN mkdir /base-dir && echo y > /base-dir/y && rm /keep
COPY f /f
`;

interface Layout {
  readonly manifest: { layers: { digest: string; mediaType: string }[] };
  readonly config: { rootfs: { diff_ids: string[] }; history: { created_by?: string; empty_layer?: boolean }[] };
}

async function readLayout(dir: string): Promise<Layout> {
  const blob = async (d: string) => JSON.parse(await readFile(join(dir, 'blobs/sha256', d.slice(7)), 'utf8'));
  const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const manifest = await blob(index.manifests[0]!.digest);
  return { manifest, config: await blob(manifest.config.digest) };
}

/** Builds into an OCI layout dir under the mode's out dir; returns the layout and stderr. */
async function build(mode: ModeRun, ctx: string, name: string, extra: string[]): Promise<{ layout: string; stderr: string }> {
  const layout = join(mode.out, name);
  const r = await mode.run([...mode.rootArgs, 'build', '--progress', 'plain', '--output', `type=oci,dest=${layout},tar=false,name=img`, ...extra, ctx]);
  assert.is(r.code, 0, `${mode.name} ${name}: ${r.stderr}`);
  return { layout, stderr: r.stderr };
}

test('--squash and --squash-all keep the filesystem, history and per-step cache, in every isolation mode', async () => {
  const bundles = await mkdtemp(join(tmpdir(), 'tsbuild-squash-'));
  try {
    await inEveryMode(
      {},
      busyboxContext({ Dockerfile: DOCKERFILE, f: 'f\n' }),
      async (mode) => {
        const ctx = modeContext(mode);
        const plainBuild = await build(mode, ctx, 'plain', []);
        const squashBuild = await build(mode, ctx, 'squash', ['--squash']);
        const allBuild = await build(mode, ctx, 'squash-all', ['--squash-all']);
        // Every step came from the cache: squashing works on the steps' layers, not instead of them.
        for (const b of [squashBuild, allBuild]) assert.is(b.stderr.match(/^#\d+ CACHED$/gm)?.length, 6, `${mode.name}: all six steps cached\n${b.stderr}`);
        const again = await build(mode, ctx, 'squash-again', ['--squash']);
        await checkImages(mode.name, bundles, plainBuild.layout, squashBuild.layout, allBuild.layout, again.layout);
      },
    );
  } finally {
    await rm(bundles, { recursive: true, force: true });
  }
});

async function checkImages(mode: string, bundles: string, plainDir: string, squashDir: string, allDir: string, againDir: string): Promise<void> {
  const plain = await readLayout(plainDir);
  const squashed = await readLayout(squashDir);
  const all = await readLayout(allDir);
  // base stage: 2 layers; this build's stage: 4 more (RUN, RUN, RUN, COPY).
  assert.is(plain.config.rootfs.diff_ids.length, 6, mode);
  assert.is(squashed.config.rootfs.diff_ids.length, 3, `${mode}: the base's two layers and one squashed layer`);
  assert.equal(squashed.config.rootfs.diff_ids.slice(0, 2), plain.config.rootfs.diff_ids.slice(0, 2), `${mode}: base layers untouched`);
  assert.is(all.config.rootfs.diff_ids.length, 1, `${mode}: --squash-all makes one layer`);
  for (const img of [squashed, all]) {
    assert.is(img.config.history.length, plain.config.history.length, `${mode}: every history entry kept`);
    assert.is(img.config.history.filter((h) => !h.empty_layer).length, img.config.rootfs.diff_ids.length, `${mode}: one non-empty entry per layer`);
    assert.not.ok(img.config.history.at(-1)!.empty_layer, `${mode}: the last entry carries the squashed layer`);
    assert.match(img.config.history.at(-1)!.created_by ?? '', /COPY f \/f/);
  }
  assert.equal(squashed.config.history.slice(0, 2), plain.config.history.slice(0, 2), `${mode}: base entries as they were`);
  // A rebuild with --squash gives the same image (the squash is remembered, or redone the same).
  assert.equal((await readLayout(againDir)).manifest, squashed.manifest, `${mode}: the same squashed image again`);

  // The squash-all layer is a plain tree: no whiteouts or opaque markers left.
  const allLayer = join(allDir, 'blobs/sha256', all.manifest.layers[0]!.digest.slice(7));
  assert.not.match(await tool('tar', ['-tzf', allLayer]), /\.wh\./, `${mode}: no whiteout in --squash-all's layer`);
  // The squashed layer still deletes what the base holds.
  const newLayer = join(squashDir, 'blobs/sha256', squashed.manifest.layers[2]!.digest.slice(7));
  const listing = await tool('tar', ['-tzf', newLayer]);
  assert.match(listing, /^bin\/\.wh\.true$/m, `${mode}: whiteout of a base file kept`);
  assert.match(listing, /^base-dir\/\.wh\.\.wh\.\.opq$/m, `${mode}: a base directory made again is opaque`);

  // umoci unpacks all three to the same filesystem.
  const trees: Awaited<ReturnType<typeof snapshotTree>>[] = [];
  for (const [name, layout] of [['plain', plainDir], ['squash', squashDir], ['squash-all', allDir]] as const) {
    const bundle = join(bundles, `${mode.replace(/\W/g, '-')}-${name}`);
    await tool('umoci', ['unpack', '--image', `${layout}:latest`, bundle]);
    trees.push(await snapshotTree(join(bundle, 'rootfs')));
  }
  const [plainTree, squashTree, allTree] = trees;
  assert.equal(diffTrees(plainTree!, squashTree!), [], `${mode}: --squash changes no file`);
  assert.equal(diffTrees(plainTree!, allTree!), [], `${mode}: --squash-all changes no file`);
  assert.ok(!plainTree!.has('bin/true') && !plainTree!.has('base-file') && !plainTree!.has('keep') && !plainTree!.has('base-dir/x') && !plainTree!.has('d/a'), `${mode}: the deletions happened`);
  assert.ok(plainTree!.has('d/b') && plainTree!.has('base-dir/y') && plainTree!.has('f'), `${mode}: the additions happened`);
}

test('--squash with --squash-all is a usage error naming both flags', async () => {
  const r = await tsbuild(['build', '--squash', '--squash-all', '.']);
  assert.is(r.code, 2, r.stderr);
  assert.match(r.stderr, /--squash and --squash-all: use one/);
});

test.run();

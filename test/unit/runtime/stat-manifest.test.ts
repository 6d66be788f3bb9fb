import { execFileSync } from 'node:child_process';
import { appendFile, chmod, chown, link, mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { lgetxattr, lsetxattr } from '../../../src/oci/native-fs.js';
import { cloneTree } from '../../../src/runtime/clone-entry.js';
import { applyLayerDir } from '../../../src/runtime/materialize-layers.js';
import { StatManifest } from '../../../src/runtime/stat-manifest.js';
import { diffTrees, snapshotTree } from '../../helpers/tree-compare.js';

/**
 * The copy snapshotter's diff against the real thing: the same change is made once in an
 * overlayfs mount (userxattr, as tsbuild mounts) and once in a plain copy of the same tree
 * diffed with a stat manifest; both uppers must hold the same entries, whiteouts and opaque
 * markers. Then the upper, applied onto the lower with applyLayerDir, must give overlay's
 * merged view.
 */
const test = suite('stat manifest diff');
const OPAQUE = 'user.overlay.opaque';

/** A lower tree with a bit of everything. */
async function makeLower(dir: string): Promise<void> {
  await mkdir(join(dir, 'etc/conf.d'), { recursive: true });
  await writeFile(join(dir, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\n');
  await writeFile(join(dir, 'etc/conf.d/a'), 'a');
  await writeFile(join(dir, 'etc/conf.d/b'), 'b');
  await mkdir(join(dir, 'd/sub/deeper'), { recursive: true });
  await writeFile(join(dir, 'd/sub/deeper/x'), 'x');
  await writeFile(join(dir, 'd/keep'), 'k');
  await mkdir(join(dir, 'gone/inner'), { recursive: true });
  await writeFile(join(dir, 'gone/inner/f'), 'f');
  await writeFile(join(dir, 'modify'), 'old');
  await writeFile(join(dir, 'chmodme'), 'c');
  await writeFile(join(dir, 'chownme'), 'c');
  await writeFile(join(dir, 'delme'), 'd');
  await writeFile(join(dir, 'xattrme'), 'x');
  await writeFile(join(dir, 'tobedir'), 'file');
  await mkdir(join(dir, 'tobefile/inner'), { recursive: true });
  await symlink('etc/passwd', join(dir, 'link'));
  await mkdir(join(dir, 'untouched/a/b'), { recursive: true });
  await writeFile(join(dir, 'untouched/a/b/c'), 'c');
  await chmod(join(dir, 'untouched'), 0o750);
}

/** The RUN: every kind of change the diff must find. */
async function change(root: string): Promise<void> {
  await writeFile(join(root, 'new'), 'new file');
  await mkdir(join(root, 'newdir/nested'), { recursive: true });
  await writeFile(join(root, 'newdir/nested/n'), 'n');
  await appendFile(join(root, 'modify'), ' and more');
  await chmod(join(root, 'chmodme'), 0o4711);
  await chown(join(root, 'chownme'), 1000, 1000);
  await rm(join(root, 'delme'));
  await rm(join(root, 'gone'), { recursive: true });
  await rm(join(root, 'etc/conf.d/a'));
  // Replaced directory: its old content must be hidden (opaque), the new content kept.
  await rm(join(root, 'd'), { recursive: true });
  await mkdir(join(root, 'd'));
  await writeFile(join(root, 'd/fresh'), 'fresh');
  await mkdir(join(root, 'd/sub'));
  lsetxattr(join(root, 'xattrme'), 'user.test', Buffer.from('v'));
  await rm(join(root, 'tobedir'));
  await mkdir(join(root, 'tobedir'));
  await writeFile(join(root, 'tobedir/in'), 'in');
  await rm(join(root, 'tobefile'), { recursive: true });
  await writeFile(join(root, 'tobefile'), 'now a file');
  await writeFile(join(root, 'h1'), 'linked');
  await link(join(root, 'h1'), join(root, 'h2'));
  await symlink('/nowhere', join(root, 'newlink'));
  execFileSync('mkfifo', [join(root, 'fifo')]);
  await rm(join(root, 'link'));
  await symlink('other', join(root, 'link'));
  await rename(join(root, 'etc/conf.d/b'), join(root, 'etc/conf.d/c'));
}

/** Paths carrying the opaque marker, and the link groups, of an upper. */
function markers(dir: string, tree: Map<string, unknown>): string[] {
  const out: string[] = [];
  for (const p of tree.keys()) {
    const v = lgetxattr(join(dir, p), OPAQUE);
    if (v?.toString() === 'y') out.push(p);
  }
  return out.sort();
}

function inodeGroups(dir: string, tree: Map<string, { type: string }>): string[][] {
  const byIno = new Map<string, string[]>();
  for (const [p, n] of tree) {
    if (n.type !== 'file') continue;
    const st = execFileSync('stat', ['-c', '%i', join(dir, p)]).toString().trim();
    byIno.set(st, [...(byIno.get(st) ?? []), p]);
  }
  return [...byIno.values()].filter((g) => g.length > 1).map((g) => g.sort());
}

if (process.getuid?.() !== 0) {
  test('skipped: not root (overlayfs)', () => {});
} else {
  test('the upper of a manifest diff equals overlayfs upperdir for the same changes', async () => {
    const base = await mkdtemp(join(tmpdir(), 'tsbuild-manifest-'));
    const ov = { lower: join(base, 'lower'), upper: join(base, 'ov-upper'), work: join(base, 'ov-work'), merged: join(base, 'merged') };
    let mounted = false;
    try {
      for (const d of Object.values(ov)) await mkdir(d);
      await makeLower(ov.lower);
      execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${ov.lower},upperdir=${ov.upper},workdir=${ov.work},userxattr,redirect_dir=nofollow,metacopy=off,index=off`, ov.merged]);
      mounted = true;
      await change(ov.merged);
      const mergedView = await snapshotTree(ov.merged);
      execFileSync('umount', [ov.merged]);
      mounted = false;

      // The same change in a plain copy, diffed by its manifest.
      const work = join(base, 'work');
      await cloneTree(ov.lower, work);
      const manifest = await StatManifest.record(work);
      await change(work);
      const upper = join(base, 'upper');
      await mkdir(upper);
      const next = await manifest.writeUpper(work, upper, { opaqueXattr: OPAQUE });

      const want = await snapshotTree(ov.upper);
      const got = await snapshotTree(upper);
      assert.equal(diffTrees(want, got, (p) => p === '.'), []);
      assert.equal(markers(upper, got), markers(ov.upper, want));
      assert.ok(markers(upper, got).includes('d'), 'the replaced directory is opaque');
      assert.ok(markers(upper, got).includes('tobedir'), 'a directory made where a file was is opaque');
      assert.equal(inodeGroups(upper, got), [['h1', 'h2']]);
      assert.is(lgetxattr(join(upper, 'xattrme'), 'user.test')?.toString(), 'v');
      assert.not.ok(got.has('untouched'), 'an unchanged directory is not copied');

      // The returned manifest describes the tree as it is now: a second diff finds nothing.
      const again = join(base, 'again');
      await mkdir(again);
      await next.writeUpper(work, again, { opaqueXattr: OPAQUE });
      assert.equal([...(await snapshotTree(again)).keys()], ['.']);

      // Applying the upper onto the lower gives overlay's merged view.
      const applied = join(base, 'applied');
      await mkdir(applied);
      await applyLayerDir(ov.lower, applied);
      await applyLayerDir(upper, applied);
      assert.equal(diffTrees(mergedView, await snapshotTree(applied), (p) => p === '.'), []);
    } finally {
      if (mounted) execFileSync('umount', ['-l', ov.merged]);
      await rm(base, { recursive: true, force: true });
    }
  });

  test('acceptCtime takes a move away and back as no change, anything else stays a change', async () => {
    const base = await mkdtemp(join(tmpdir(), 'tsbuild-manifest-'));
    try {
      const work = join(base, 'work');
      await mkdir(join(work, 'etc'), { recursive: true });
      await writeFile(join(work, 'etc/hosts'), 'h');
      await writeFile(join(work, 'etc/other'), 'o');
      const manifest = await StatManifest.record(work);
      await rename(join(work, 'etc/hosts'), join(base, 'aside'));
      await rename(join(base, 'aside'), join(work, 'etc/hosts'));
      await chmod(join(work, 'etc/other'), 0o600);
      const { lstat } = await import('node:fs/promises');
      assert.ok(manifest.acceptCtime('etc/hosts', await lstat(join(work, 'etc/hosts'), { bigint: true })));
      assert.not.ok(manifest.acceptCtime('etc/other', await lstat(join(work, 'etc/other'), { bigint: true })));
      const upper = join(base, 'upper');
      await mkdir(upper);
      await manifest.writeUpper(work, upper, { opaqueXattr: OPAQUE });
      const got = [...(await snapshotTree(upper)).keys()].sort();
      // etc itself: its mtime moved with the renames (the runner restores it; here nobody did).
      assert.equal(got, ['.', 'etc', 'etc/other']);
    } finally {
      await rm(base, { recursive: true, force: true });
    }
  });
}

test.run();

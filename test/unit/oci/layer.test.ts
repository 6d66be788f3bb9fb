import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { chmod, chown, link, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, writeFile, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { constants } from 'node:fs';
import { Digester, sha256 } from '../../../src/oci/digest.js';
import { TarWriter } from '../../../src/oci/tar/tar-writer.js';
import type { TarEntry } from '../../../src/oci/tar/tar-entry.js';
import { writeLayerTar } from '../../../src/oci/layer/diff.js';
import { createLayerBlob } from '../../../src/oci/layer/blob.js';
import { applyLayer } from '../../../src/oci/layer/apply.js';
import { llistxattr, lgetxattr, lsetxattr, mknod } from '../../../src/oci/native-fs.js';
import { mountsUnder } from '../../helpers/mounts.js';

const CAP = Buffer.from('0100000200200000000000000000000000000000', 'hex');
const isRoot = process.getuid?.() === 0;

interface Node {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  content?: string;
  link?: string;
  rdev?: number;
  mtime?: number;
  xattrs: Record<string, string>;
  ino?: number;
}

/** Everything a layer must reproduce about a tree, keyed by relative path. */
async function snapshot(root: string): Promise<Record<string, Node>> {
  const out: Record<string, Node> = {};
  const inodes = new Map<number, string>();
  async function walk(rel: string): Promise<void> {
    for (const name of (await readdir(join(root, rel))).sort()) {
      const path = rel ? `${rel}/${name}` : name;
      const abs = join(root, path);
      const st = await lstat(abs);
      const xattrs: Record<string, string> = {};
      for (const x of llistxattr(abs).sort()) if (!x.startsWith('trusted.overlay.')) xattrs[x] = lgetxattr(abs, x)!.toString('hex');
      const type = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'symlink' : st.isFIFO() ? 'fifo' : st.isCharacterDevice() ? 'char' : 'other';
      const n: Node = { type, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, xattrs };
      if (type === 'file') {
        n.content = createHash('sha256').update(await readFile(abs)).digest('hex');
        n.mtime = Math.floor(st.mtimeMs / 1000);
        // hardlinks: record the first path sharing the inode instead of the inode number
        if (st.nlink > 1) {
          if (!inodes.has(st.ino)) inodes.set(st.ino, path);
          n.link = `hard:${inodes.get(st.ino)}`;
        }
      }
      if (type === 'symlink') n.link = await readlink(abs);
      if (type === 'char') n.rdev = st.rdev;
      out[path] = n;
      if (type === 'dir') await walk(path);
    }
  }
  await walk('');
  return out;
}

async function makeLower(l: string): Promise<void> {
  await mkdir(join(l, 'etc'), { recursive: true });
  await writeFile(join(l, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\n');
  await writeFile(join(l, 'etc/keep'), 'keep\n');
  await mkdir(join(l, 'olddir/b'), { recursive: true });
  await writeFile(join(l, 'olddir/a'), 'a');
  await writeFile(join(l, 'olddir/b/c'), 'c');
  await writeFile(join(l, 'rm-me'), 'bye');
  await mkdir(join(l, 'replace'));
  await writeFile(join(l, 'replace/x'), 'x');
  await writeFile(join(l, 'replace/y'), 'y');
  await mkdir(join(l, 'bin'));
  await writeFile(join(l, 'bin/tool'), '#!/bin/sh\n');
  await chmod(join(l, 'bin/tool'), 0o755);
  await mkdir(join(l, 'movedir'));
  await writeFile(join(l, 'movedir/m'), 'm');
}

/** Changes made through the merged overlay view: every kind a layer must carry. */
async function mutate(m: string): Promise<void> {
  await appendFile(join(m, 'etc/passwd'), 'app:x:1000:1000::/home/app:/bin/sh\n');
  await chown(join(m, 'etc/keep'), 1000, 1000);
  await rm(join(m, 'rm-me'));
  await rm(join(m, 'olddir/b'), { recursive: true });
  await rm(join(m, 'replace'), { recursive: true });
  await mkdir(join(m, 'replace'));
  await writeFile(join(m, 'replace/z'), 'z');
  // rename(2) of a lower dir is EXDEV with redirect_dir=off; mv falls back to copy + delete
  execFileSync('mv', [join(m, 'movedir'), join(m, 'moved')]);
  await chmod(join(m, 'bin/tool'), 0o4755);
  await mkdir(join(m, 'new/sub'), { recursive: true });
  await chmod(join(m, 'new'), 0o1777);
  await writeFile(join(m, 'new/h1'), 'linked');
  await link(join(m, 'new/h1'), join(m, 'new/sub/h2'));
  await symlink('../etc/passwd', join(m, 'new/sym'));
  await writeFile(join(m, 'new/cap'), 'cap');
  await chown(join(m, 'new/cap'), 0, 0);
  lsetxattr(join(m, 'new/cap'), 'security.capability', CAP);
  lsetxattr(join(m, 'new/cap'), 'user.x', Buffer.from([0, 1, 2]));
  mknod(join(m, 'new/fifo'), constants.S_IFIFO | 0o640, 0, 0);
  await writeFile(join(m, 'new/empty'), '');
  await writeFile(join(m, 'new/' + 'long-'.repeat(40)), 'long');
  await writeFile(join(m, 'new/ünï'), 'u');
}

function mountOverlay(lower: string, upper: string | undefined, work: string | undefined, merged: string): void {
  const opts = upper ? `lowerdir=${lower},upperdir=${upper},workdir=${work},redirect_dir=off,metacopy=off,index=off` : `lowerdir=${lower}`;
  execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', opts, merged]);
}

const test = suite('layer diff/apply (overlayfs round trip)');
let tmp = '';
test.before.each(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'tsbuild-layer-'));
});
test.after.each(async () => {
  for (const m of mountsUnder(tmp).reverse()) execFileSync('umount', [m]);
  await rm(tmp, { recursive: true, force: true });
});

test('upperdir → layer tar → flatten and overlay apply reproduce the merged view', async () => {
  if (!isRoot) return console.log('  (skipped: overlay mounts need root)');
  const [L, U, W, M] = ['lower', 'upper', 'work', 'merged'].map((d) => join(tmp, d)) as [string, string, string, string];
  for (const d of [L, U, W, M]) await mkdir(d);
  await makeLower(L);
  let merged: Record<string, Node>;
  mountOverlay(L, U, W, M);
  try {
    await mutate(M);
    merged = await snapshot(M);
  } finally {
    execFileSync('umount', [M]);
  }
  assert.equal(mountsUnder(tmp), []);

  // diff
  const tarFile = join(tmp, 'layer.tar');
  const w = new TarWriter();
  const done = pipeline(w.stream, createWriteStream(tarFile));
  await writeLayerTar(U, w, { opaqueXattr: 'trusted.overlay.opaque' });
  await w.finish();
  await done;
  const listing = execFileSync('tar', ['--numeric-owner', '-tvf', tarFile], { encoding: 'utf8' });
  const names = execFileSync('tar', ['-tf', tarFile], { encoding: 'utf8' }).trim().split('\n');
  for (const n of ['.wh.rm-me', 'olddir/.wh.b', 'replace/', 'replace/.wh..wh..opq', 'replace/z', '.wh.movedir', 'moved/m', 'new/cap', 'bin/tool']) {
    assert.ok(names.includes(n), `${n} in layer:\n${listing}`);
  }
  assert.ok(names.indexOf('replace/.wh..wh..opq') === names.indexOf('replace/') + 1, 'opaque marker right after its dir');
  assert.not.ok(names.some((n) => n.startsWith('./') || n.startsWith('/')));
  assert.not.ok(names.includes('etc/keep/'), 'no dir slash on files');
  assert.ok(names.indexOf('etc/') < names.indexOf('etc/passwd'), 'dirs before contents');
  assert.match(listing, /^h.* new\/sub\/h2 link to new\/h1$/m);
  assert.match(listing, /^-rwsr-xr-x +0\/0 .* bin\/tool$/m);
  assert.match(listing, /^---------- +0\/0 +0 .* \.wh\.rm-me$/m);
  assert.not.match(listing, /^h.*\.wh\./m, 'whiteouts are never hardlinks');
  const xattrs = execFileSync('tar', ['--xattrs', '--xattrs-include=*', '-tvvf', tarFile], { encoding: 'utf8' });
  assert.not.match(xattrs, /trusted\.overlay/);

  // flatten onto a copy of the lower dir
  const F = join(tmp, 'flat');
  execFileSync('cp', ['-a', L, F]);
  await applyLayer(createReadStream(tarFile), F, { mode: 'flatten' });
  assert.equal(await snapshot(F), merged);

  // overlay-format apply, then mounted above the lower dir
  const O = join(tmp, 'olayer');
  await mkdir(O);
  await applyLayer(createReadStream(tarFile), O, { mode: 'overlay', opaqueXattr: 'trusted.overlay.opaque' });
  const wh = await lstat(join(O, 'rm-me'));
  assert.ok(wh.isCharacterDevice() && wh.rdev === 0, 'whiteout device');
  assert.is(lgetxattr(join(O, 'replace'), 'trusted.overlay.opaque')?.toString(), 'y');
  const M2 = join(tmp, 'merged2');
  await mkdir(M2);
  mountOverlay(`${O}:${L}`, undefined, undefined, M2);
  try {
    assert.equal(await snapshot(M2), merged);
  } finally {
    execFileSync('umount', [M2]);
  }
});

test('the diff is deterministic', async () => {
  if (!isRoot) return;
  const U = join(tmp, 'u');
  await mkdir(join(U, 'a/b'), { recursive: true });
  for (const n of ['z', 'a', 'M', 'é', '_']) await writeFile(join(U, 'a', n), n);
  const digestOf = async (): Promise<string> => {
    const w = new TarWriter();
    const d = new Digester();
    const done = (async () => {
      for await (const c of w.stream) d.update(c as Buffer);
    })();
    await writeLayerTar(U, w, { opaqueXattr: 'trusted.overlay.opaque' });
    await w.finish();
    await done;
    return d.digest();
  };
  assert.is(await digestOf(), await digestOf());
});

test('the host\'s SELinux label stays out of the layer; other security and user xattrs stay in', async () => {
  if (!isRoot) return;
  const U = join(tmp, 'u');
  await mkdir(U, { recursive: true });
  await writeFile(join(U, 'f'), 'f');
  lsetxattr(join(U, 'f'), 'security.selinux', Buffer.from('system_u:object_r:container_file_t:s0\0'));
  lsetxattr(join(U, 'f'), 'security.capability', CAP);
  lsetxattr(join(U, 'f'), 'user.keep', Buffer.from('1'));
  assert.ok(llistxattr(join(U, 'f')).includes('security.selinux'), 'the host stores the label (else this test proves nothing)');
  const entries: TarEntry[] = [];
  await writeLayerTar(U, { add: async (e) => void entries.push(e) }, {});
  assert.equal([...(entries[0]!.xattrs?.keys() ?? [])], ['security.capability', 'user.keep']);
});

test('a diff of many files (beyond the look-ahead, around the whole-read size, hardlinked): GNU tar reads the same tree, in order, from few chunks', async () => {
  if (!isRoot) return;
  const U = join(tmp, 'u');
  const sizes = [0, 1, 511, 512, 65535, 65536, 65537, 3 * 1024 * 1024 + 5];
  const expected: string[] = [];
  for (let d = 0; d < 3; d++) {
    expected.push(`d${d}/`);
    await mkdir(join(U, `d${d}`), { recursive: true });
    const names = [...Array(60).keys()].map((f) => `f${String(f).padStart(2, '0')}`);
    for (const [i, n] of names.entries()) {
      await writeFile(join(U, `d${d}/${n}`), Buffer.alloc(sizes[i % sizes.length]!, `${d}${n}`));
      expected.push(`d${d}/${n}`);
    }
  }
  await link(join(U, 'd0/f07'), join(U, 'd2/z-link'));
  expected.push('d2/z-link');
  const w = new TarWriter();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of w.stream) chunks.push(c as Buffer);
  })();
  await writeLayerTar(U, w, { opaqueXattr: 'trusted.overlay.opaque' });
  await w.finish();
  await done;
  const tar = Buffer.concat(chunks);
  assert.equal(execFileSync('tar', ['-tf', '-'], { input: tar, encoding: 'utf8', maxBuffer: 1 << 26 }).trim().split('\n'), expected);
  assert.match(execFileSync('tar', ['-tvf', '-'], { input: tar, encoding: 'utf8', maxBuffer: 1 << 26 }), /d2\/z-link link to d0\/f07/);
  const X = join(tmp, 'x');
  await mkdir(X);
  execFileSync('tar', ['-xf', '-', '-C', X], { input: tar, maxBuffer: 1 << 26 });
  for (const p of ['d0/f00', 'd1/f04', 'd1/f05', 'd1/f06', 'd2/f07', 'd2/f59']) assert.ok((await readFile(join(X, p))).equals(await readFile(join(U, p))), p);
  assert.ok(chunks.length < 200, `${chunks.length} chunks for ${3 * 61} entries: small pieces are gathered`);
});

test('createLayerBlob: the uncompressed tar (digest = diffId), empty flag', async () => {
  const U = join(tmp, 'u');
  await mkdir(join(U, 'd'), { recursive: true });
  await writeFile(join(U, 'd/f'), Buffer.alloc(3 * 1024 * 1024, 'q'));
  const blobFile = join(tmp, 'blob');
  const sink = async (s: Readable) => {
    const d = new Digester();
    await pipeline(
      s,
      async function* (src: AsyncIterable<Buffer>) {
        for await (const c of src) {
          d.update(c);
          yield c;
        }
      },
      createWriteStream(blobFile),
    );
    return { digest: d.digest(), size: d.size };
  };
  const r = await createLayerBlob(U, sink);
  const blob = await readFile(blobFile);
  assert.is(r.digest, sha256(blob));
  assert.is(r.size, blob.length);
  assert.ok(blob.length > 3 * 1024 * 1024, 'not compressed: a build does not wait for gzip');
  assert.not.ok(r.empty);
  const tar = blob;
  assert.is(r.diffId, sha256(tar));
  assert.is(r.diffId, r.digest);
  assert.equal(execFileSync('tar', ['-tf', '-'], { input: tar, encoding: 'utf8' }).trim().split('\n'), ['d/', 'd/f']);

  const E = join(tmp, 'empty');
  await mkdir(E);
  const e = await createLayerBlob(E, sink);
  assert.ok(e.empty);
  assert.is((await readFile(blobFile)).length, 1024);

  await assert.not.throws(() => undefined);
  let caught: unknown;
  try {
    await createLayerBlob(U, async () => {
      throw new Error('store is full');
    });
  } catch (err) {
    caught = err;
  }
  assert.match(String(caught), /store is full/);
});

async function layerOf(entries: Parameters<TarWriter['add']>[0][]): Promise<Buffer[]> {
  const w = new TarWriter();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of w.stream) chunks.push(c as Buffer);
  })();
  for (const e of entries) await w.add(e);
  await w.finish();
  await done;
  return chunks;
}

const file = (path: string) => ({ path, type: 'file' as const, mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 0 });
const escapingSymlink = { path: 'esc', type: 'symlink' as const, linkname: '/tmp', mode: 0o777, uid: 0, gid: 0, size: 0, mtime: 0 };

test('apply never writes outside dest', async () => {
  const refused: Array<[string, Parameters<TarWriter['add']>[0][], 'flatten' | 'overlay']> = [
    ['dotdot', [file('../evil')], 'flatten'],
    ['hardlink out', [{ path: 'h', type: 'hardlink', linkname: '../../etc/passwd', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 0 }], 'flatten'],
    // A layer dir holds only its own entries: a symlinked parent there is malformed.
    ['overlay symlink parent', [escapingSymlink, file('esc/evil')], 'overlay'],
  ];
  for (const [label, entries, mode] of refused) {
    const dest = join(tmp, label.replaceAll(' ', '-'));
    await mkdir(dest);
    let err: unknown;
    try {
      await applyLayer(Readable.from(await layerOf(entries)), dest, { mode, opaqueXattr: 'trusted.overlay.opaque' });
    } catch (e) {
      err = e;
    }
    assert.instance(err, Error, label);
    assert.match(String(err), /refus|escapes/, label);
  }

  // As docker's chrooted unpack and umoci do: absolute names are relative to the root, and a
  // symlinked parent resolves inside the root, even when it points at an absolute path.
  const dest = join(tmp, 'clamped');
  await mkdir(dest);
  await applyLayer(Readable.from(await layerOf([file('/etc/evil'), escapingSymlink, file('esc/evil')])), dest, { mode: 'flatten' });
  assert.ok(await lstat(join(dest, 'etc/evil')));
  assert.ok(await lstat(join(dest, 'tmp/evil')), 'esc -> /tmp resolved inside dest');
  assert.not.ok(await lstat('/tmp/evil').catch(() => undefined), 'nothing written outside');
  assert.not.ok(await lstat('/etc/evil').catch(() => undefined), 'nothing written outside');
});

test('flatten follows in-root symlinked parents (merged-usr lib -> usr/lib)', async () => {
  const dest = join(tmp, 'merged-usr');
  await mkdir(join(dest, 'usr/lib'), { recursive: true });
  await symlink('usr/lib', join(dest, 'lib'));
  await applyLayer(Readable.from(await layerOf([file('lib/libx.so')])), dest, { mode: 'flatten' });
  assert.ok((await lstat(join(dest, 'usr/lib/libx.so'))).isFile());
  assert.ok((await lstat(join(dest, 'lib'))).isSymbolicLink(), 'the symlink itself is kept');
});

test('flatten replaces entries of a different type and applies setuid after chown', async () => {
  const dest = join(tmp, 'root');
  await mkdir(join(dest, 'was-dir/sub'), { recursive: true });
  await writeFile(join(dest, 'was-file'), 'f');
  const w = new TarWriter();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of w.stream) chunks.push(c as Buffer);
  })();
  await w.add({ path: 'was-dir', type: 'file', mode: 0o4755, uid: 1000, gid: 1000, size: 2, mtime: 1000 }, Buffer.from('ok'));
  await w.add({ path: 'was-file', type: 'dir', mode: 0o2775, uid: 5, gid: 6, size: 0, mtime: 2000 });
  await w.add({ path: 'was-file/inner', type: 'file', mode: 0o600, uid: 0, gid: 0, size: 0, mtime: 0 });
  await w.finish();
  await done;
  await applyLayer(Readable.from(chunks), dest, { mode: 'flatten' });
  const f = await lstat(join(dest, 'was-dir'));
  assert.ok(f.isFile());
  assert.is(f.mode & 0o7777, 0o4755);
  assert.is(f.uid, 1000);
  assert.is(f.mtimeMs, 1_000_000);
  const d = await lstat(join(dest, 'was-file'));
  assert.ok(d.isDirectory());
  assert.is(d.mode & 0o7777, 0o2775);
  assert.is(d.mtimeMs, 2_000_000, 'dir mtime set after its contents');
});

test.run();

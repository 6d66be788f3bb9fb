import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, writeFile, lstat, rmdir, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { atInRoot, mkdirInRoot, readFileInRoot, resolveInRoot, resolvedInRoot } from '../../../src/oci/in-root.js';
import { execFileSync } from 'node:child_process';
import type { ResolveMode } from '../../../src/oci/native-fs.js';

/**
 * A hostile tree: every way a symlink can point out of it (absolute, relative with `..`, via
 * a chain, a loop), next to a canary directory outside the root that must never be touched.
 * Both resolvers (openat2 and the descriptor walk) must agree on every case.
 */
let work = '';
let root = '';
let canary = '';

async function layout(): Promise<void> {
  work = await mkdtemp(join(tmpdir(), 'tsbuild-inroot-'));
  root = join(work, 'root');
  canary = join(work, 'canary');
  await mkdir(join(root, 'etc'), { recursive: true });
  await mkdir(join(root, 'usr/lib'), { recursive: true });
  await mkdir(canary);
  await writeFile(join(canary, 'secret'), 'host');
  await mkdir(join(canary, 'emptydir'));
  await writeFile(join(canary, 'empty'), '');
  await writeFile(join(root, 'etc/passwd'), 'inside');
  await writeFile(join(root, 'secret'), 'root-secret');
  await symlink(canary, join(root, 'abs')); // absolute: the host's canary
  await symlink('../../../../../../..' + canary, join(root, 'rel')); // climbs with ..
  await symlink('/', join(root, 'slash'));
  await symlink('chain2', join(root, 'chain1'));
  await symlink('/abs', join(root, 'chain2'));
  await symlink('loop', join(root, 'loop'));
  await symlink('usr/lib', join(root, 'lib')); // merged-usr: a normal, inside link
  await symlink(join(canary, 'missing'), join(root, 'dangling'));
}

/** Awaits `fn` and asserts it failed with a message matching `re`. */
async function rejects(fn: () => Promise<unknown>, re: RegExp): Promise<void> {
  try {
    await fn();
  } catch (e) {
    assert.match(String((e as Error).message), re);
    return;
  }
  assert.unreachable(`expected a rejection matching ${re}`);
}

async function canaryIntact(): Promise<void> {
  assert.equal((await readdir(canary)).sort(), ['empty', 'emptydir', 'secret']);
  assert.is(await readFile(join(canary, 'secret'), 'utf8'), 'host');
}

for (const mode of ['kernel', 'walk'] as ResolveMode[]) {
  const test = suite(`in-root (${mode})`);
  const opts = { mode };
  test.before.each(layout);
  test.after.each(async () => {
    await rm(work, { recursive: true, force: true });
  });

  test('symlinks out of the root resolve inside it', async () => {
    for (const link of ['abs', 'rel', 'chain1']) {
      // The canary's path, taken inside the root, does not exist there.
      await rejects(() => resolvedInRoot(root, `/${link}/secret`, (h) => readFile(h, 'utf8'), opts), /ENOENT/);
    }
    assert.is(await resolvedInRoot(root, '/slash/secret', (h) => readFile(h, 'utf8'), opts), 'root-secret');
    assert.is(await resolvedInRoot(root, '/../../../secret', (h) => readFile(h, 'utf8'), opts), 'root-secret');
    assert.is(await resolvedInRoot(root, '/slash/../etc/passwd', (h) => readFile(h, 'utf8'), opts), 'inside');
    assert.is(await resolveInRoot(root, '/lib', opts), join(root, 'usr/lib'));
    await rejects(() => resolveInRoot(root, '/abs', opts), /ENOENT/);
    await rejects(() => resolveInRoot(root, '/loop/x', opts), /ELOOP/);
    await canaryIntact();
  });

  test('writes and deletions through planted links stay inside the root', async () => {
    // The parents resolve to paths the root does not have.
    await rejects(() => atInRoot(root, '/abs/secret', (h) => writeFile(h, 'x'), opts), /ENOENT/);
    await rejects(() => atInRoot(root, '/rel/empty', (h) => unlink(h), opts), /ENOENT/);
    await rejects(() => atInRoot(root, '/chain1/emptydir', (h) => rmdir(h), opts), /ENOENT/);
    // The leaf is never followed: deleting a link deletes the link.
    await atInRoot(root, '/dangling', (h) => unlink(h), opts);
    await canaryIntact();
    assert.not.ok(await lstat(join(root, 'dangling')).catch(() => undefined));
    await atInRoot(root, '/slash/new', (h) => writeFile(h, 'ok', { flag: 'wx' }), opts);
    assert.is(await readFile(join(root, 'new'), 'utf8'), 'ok');
  });

  test('mkdirInRoot follows inside links and never leaves the root', async () => {
    await mkdirInRoot(root, '/lib/x/y', 0o751, undefined, opts);
    assert.is((await stat(join(root, 'usr/lib/x/y'))).mode & 0o7777, 0o751);
    // A dangling link gets its target made inside the root, as BuildKit's MkdirAll in RootPath.
    await mkdirInRoot(root, '/abs/z', 0o755, undefined, opts);
    assert.ok((await stat(join(root, canary, 'z'))).isDirectory());
    await rejects(() => mkdirInRoot(root, '/loop/z', 0o755, undefined, opts), /ELOOP|too many levels|a file of that name exists/);
    await rejects(() => mkdirInRoot(root, '/etc/passwd/z', 0o755, undefined, opts), /a file of that name exists/);
    await canaryIntact();
  });

  test('symlinks: none refuses any link on the way', async () => {
    await rejects(() => atInRoot(root, '/lib/x', () => undefined, { ...opts, symlinks: 'none' }), /ELOOP/);
    await atInRoot(root, '/etc/passwd', async (h) => assert.ok((await lstat(h)).isFile()), { ...opts, symlinks: 'none' });
    // The leaf itself may be a link: it is not followed.
    await atInRoot(root, '/abs', async (h) => assert.ok((await lstat(h)).isSymbolicLink()), { ...opts, symlinks: 'none' });
  });

  test('NUL bytes are refused', async () => {
    await rejects(() => atInRoot(root, '/etc/pa\0sswd', () => undefined, opts), /NUL/);
  });

  test('readFileInRoot reads only a regular file inside the root, and at most maxBytes', () => {
    const code = (fn: () => unknown) => {
      try {
        fn();
      } catch (e) {
        return (e as NodeJS.ErrnoException).code;
      }
      return 'none';
    };
    assert.is(readFileInRoot(root, '/etc/passwd', 100, opts), 'inside');
    assert.is(code(() => readFileInRoot(root, '/abs/secret', 100, opts)), 'ENOENT', 'never the host canary');
    assert.is(readFileInRoot(root, '/slash/secret', 100, opts), 'root-secret', '/ is the root');
    assert.is(code(() => readFileInRoot(root, '/etc/passwd', 5, opts)), 'EFBIG');
    assert.is(code(() => readFileInRoot(root, '/etc', 100, opts)), 'EINVAL');
    // A fifo would block the thread that opened it for reading: refused before any open.
    execFileSync('mkfifo', [join(root, 'fifo')]);
    assert.is(code(() => readFileInRoot(root, '/fifo', 100, opts)), 'EINVAL');
  });

  test.run();
}

import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { BuildError } from '../../../src/errors.js';
import { resolveChown, resolveUser } from '../../../src/runtime/user.js';

const PASSWD = 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nsvc:x:2000:2001::/:/bin/false\n';
const GROUP = 'root:x:0:\nwheel:x:10:app\naudio:x:29:svc,app\napp:x:1000:\nsvcgrp:x:2001:\n';

async function withRootfs(fn: (dir: string) => Promise<void>, files: { passwd?: string; group?: string } = { passwd: PASSWD, group: GROUP }) {
  const dir = await mkdtemp(join(tmpdir(), 'tsbuild-user-'));
  try {
    await mkdir(join(dir, 'etc'));
    if (files.passwd !== undefined) await writeFile(join(dir, 'etc/passwd'), files.passwd);
    if (files.group !== undefined) await writeFile(join(dir, 'etc/group'), files.group);
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const user = suite('resolveUser');

const table: [string, { uid: number; gid: number; additionalGids: number[] }][] = [
  ['', { uid: 0, gid: 0, additionalGids: [] }],
  ['root', { uid: 0, gid: 0, additionalGids: [] }],
  ['app', { uid: 1000, gid: 1000, additionalGids: [10, 29] }],
  ['1000', { uid: 1000, gid: 1000, additionalGids: [10, 29] }],
  ['4242', { uid: 4242, gid: 0, additionalGids: [] }],
  ['app:wheel', { uid: 1000, gid: 10, additionalGids: [] }],
  ['app:29', { uid: 1000, gid: 29, additionalGids: [] }],
  ['app:777', { uid: 1000, gid: 777, additionalGids: [] }],
  ['4242:4343', { uid: 4242, gid: 4343, additionalGids: [] }],
  ['svc', { uid: 2000, gid: 2001, additionalGids: [29] }],
];
for (const [spec, want] of table) {
  user(`USER ${JSON.stringify(spec)}`, () => withRootfs(async (dir) => assert.equal(await resolveUser(dir, spec), want)));
}

user('unknown user name is a BuildError with docker\'s message', () =>
  withRootfs(async (dir) => {
    try {
      await resolveUser(dir, 'nosuch');
      assert.unreachable('should throw');
    } catch (e) {
      assert.instance(e, BuildError);
      assert.is((e as BuildError).code, 'INVALID_INSTRUCTION');
      assert.is((e as BuildError).message, 'unable to find user nosuch: no matching entries in passwd file');
    }
  }));

user('unknown group name is a BuildError', () =>
  withRootfs(async (dir) => {
    try {
      await resolveUser(dir, 'app:nosuch');
      assert.unreachable('should throw');
    } catch (e) {
      assert.instance(e, BuildError);
      assert.match((e as BuildError).message, 'unable to find group nosuch');
    }
  }));

user('no passwd file: numeric users work, names fail', () =>
  withRootfs(
    async (dir) => {
      assert.equal(await resolveUser(dir, '5:6'), { uid: 5, gid: 6, additionalGids: [] });
      await resolveUser(dir, 'app').then(
        () => assert.unreachable('should throw'),
        (e: unknown) => assert.instance(e, BuildError),
      );
    },
    {},
  ));

user('an /etc/passwd symlink pointing outside the rootfs is read inside it', async () => {
  const outside = await mkdtemp(join(tmpdir(), 'tsbuild-outside-'));
  try {
    await writeFile(join(outside, 'passwd'), 'evil:x:0:0::/:/bin/sh\n');
    await withRootfs(
      async (dir) => {
        await mkdir(join(dir, outside), { recursive: true });
        await writeFile(join(dir, outside, 'passwd'), 'evil:x:3:3::/:/bin/sh\n');
        await symlink(join(outside, 'passwd'), join(dir, 'etc/passwd'));
        // Resolved inside the rootfs: the in-rootfs copy says uid 3, the host file uid 0.
        assert.equal(await resolveUser(dir, 'evil'), { uid: 3, gid: 3, additionalGids: [] });
      },
      { group: '' },
    );
  } finally {
    await rm(outside, { recursive: true, force: true });
  }
});

user.run();
const chown = suite('resolveChown');

const chownTable: [{ user: string; group?: string }, { uid: number; gid: number }][] = [
  [{ user: '1000' }, { uid: 1000, gid: 1000 }],
  [{ user: '4242' }, { uid: 4242, gid: 4242 }],
  [{ user: 'svc' }, { uid: 2000, gid: 2001 }],
  [{ user: 'app', group: 'wheel' }, { uid: 1000, gid: 10 }],
  [{ user: '5', group: '6' }, { uid: 5, gid: 6 }],
];
for (const [input, want] of chownTable) {
  chown(`--chown=${input.user}${input.group ? ':' + input.group : ''}`, () =>
    withRootfs(async (dir) => assert.equal(await resolveChown(dir, input), want)));
}

// BuildKit's readUser: a name the image does not know resolves to nothing, not an error.
chown('unknown names: user 0:0, group leaves the gid as it was', () =>
  withRootfs(async (dir) => {
    assert.equal(await resolveChown(dir, { user: 'nosuch' }), { uid: 0, gid: 0 });
    assert.equal(await resolveChown(dir, { user: 'nosuch', group: 'nosuch' }), { uid: 0, gid: 0 });
    assert.equal(await resolveChown(dir, { user: 'app', group: 'nosuch' }), { uid: 1000, gid: 1000 });
    assert.equal(await resolveChown(dir, { user: '7', group: 'nosuch' }), { uid: 7, gid: 7 });
    assert.equal(await resolveChown(dir, { user: 'nosuch', group: 'wheel' }), { uid: 0, gid: 10 });
  }));

chown.run();

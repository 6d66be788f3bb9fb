/** The rule for host paths tsbuild writes (--root, --output dest, -o, --iidfile…): system places are refused. */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm, symlink, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkOutputDest, refusalReason } from '../../../src/cli/output-dest.js';
import { BuildError } from '../../../src/errors.js';

const test = suite('cli: output destinations');

test('trees: / and the system directories are refused, ordinary subdirectories are not', () => {
  for (const p of ['/', '/etc', '/usr', '/usr/bin', '/usr/local', '/usr/local/bin', '/var', '/var/lib', '/var/tmp', '/tmp', '/root', '/home', '/home/alice', '/run', '/proc', '/proc/self', '/sys/kernel', '/dev/shm', '/boot', '/lib64', '/etc/ssh']) {
    assert.ok(refusalReason(p, 'tree'), `${p} refused as a tree`);
  }
  for (const p of ['/var/lib/tsbuild', '/tmp/out', '/root/out', '/home/alice/out', '/usr/local/src/app', '/usr/src/app/out', '/mnt', '/media/usb', '/srv/images', '/work/x']) {
    assert.is(refusalReason(p, 'tree'), undefined, `${p} allowed as a tree`);
  }
  assert.ok(refusalReason('/work/me', 'tree', '/work/me'), 'the home directory itself');
});

test('files: refused inside the operating system trees and on system directories, fine elsewhere', () => {
  for (const p of ['/etc/passwd', '/usr/bin/ls', '/bin/sh', '/boot/vmlinuz', '/proc/sys/kernel/x', '/dev/sda', '/etc', '/var/lib']) {
    assert.ok(refusalReason(p, 'file'), `${p} refused as a file`);
  }
  for (const p of ['/img.tar', '/tmp/iid', '/root/image.tar', '/home/alice/meta.json', '/var/lib/tsbuild/x', '/usr/local/share/images/a.tar']) {
    assert.is(refusalReason(p, 'file'), undefined, `${p} allowed as a file`);
  }
});

test('symlinks are followed, a dangling last one too; the error names the flag; streams are fine', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'output-dest-'));
  try {
    await symlink('/', join(dir, 'to-root'));
    await symlink('/etc', join(dir, 'to-etc'));
    await symlink('/etc/tsbuild-unit-canary', join(dir, 'dangling'));
    await symlink('dangling', join(dir, 'chain'));
    await mkdir(join(dir, 'ok'));
    const refused = async (path: string, kind: 'tree' | 'file', flag: string) => {
      try {
        await checkOutputDest(path, kind, flag, {});
      } catch (e) {
        assert.instance(e, BuildError);
        assert.is((e as BuildError).code, 'USAGE');
        assert.ok((e as Error).message.startsWith(`${flag} ${path}: `), (e as Error).message);
        return;
      }
      assert.unreachable(`${path} was allowed`);
    };
    await refused(join(dir, 'to-root'), 'tree', '--output');
    await refused(join(dir, 'to-root', 'tmp'), 'tree', '--root');
    await refused(join(dir, 'to-etc', 'new', 'deeper'), 'tree', '-o, --output');
    await refused(join(dir, 'to-etc', 'iid'), 'file', '--iidfile');
    await refused(join(dir, 'dangling'), 'file', '--metadata-file');
    await refused(join(dir, 'chain'), 'file', '--metadata-file');
    // Not join(): that would clean `to-root/..` away lexically, where the kernel climbs from /.
    await refused(`${dir}/to-root/../etc/x`, 'file', '--iidfile');
    await refused(`${dir}/to-etc/../nothing/../etc/y`, 'file', '--iidfile');
    await checkOutputDest(join(dir, 'ok'), 'tree', '--output', {});
    await checkOutputDest(join(dir, 'ok', 'new', 'sub'), 'tree', '--output', {});
    await checkOutputDest(join(dir, 'ok', 'image.tar'), 'file', '--output', {});
    await checkOutputDest('/dev/null', 'file', '--iidfile', {});
    await refused('/dev/null', 'tree', '--output');
    await refused('/dev/zero', 'file', '--iidfile');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { useBuildRoot } from '../helpers/build-root.js';
import { tsbuild, tsbuildOk, tsbuildWithoutSysAdmin } from '../helpers/cli.js';

/** How a mode is chosen, shown and refused: flags, config, `tsbuild info`, the first progress line. */
const test = suite('integration: isolation mode choice');
const env = useBuildRoot(test, 'isolation-choice');
const at = () => ['--root', env.root];

test('every build names its mode and why on the first progress line; root with CAP_SYS_ADMIN gets overlay', async () => {
  const dir = await env.context('FROM busybox\nRUN echo hi > /x\n');
  const r = await tsbuildOk([...at(), 'build', '--progress', 'plain', dir]);
  assert.match(r.stderr.split('\n')[0]!, /^#0 isolation: overlay \(root with CAP_SYS_ADMIN: overlayfs and runc\)$/);
  const raw = await tsbuildOk([...at(), 'build', '--progress', 'rawjson', dir]);
  const first = JSON.parse(raw.stderr.split('\n')[0]!) as { type: string; mode: string };
  assert.equal([first.type, first.mode], ['isolation', 'overlay']);
});

test('tsbuild info prints the probe, the mode, the store root and runc version; json too', async () => {
  const text = (await tsbuildOk([...at(), 'info'])).stdout;
  assert.match(text, /^Isolation: +overlay \(/m);
  assert.match(text, new RegExp(`^Store root: +${env.root}$`, 'm'));
  assert.match(text, /^runc: +runc version \d/m);
  assert.match(text, /^ {2}user namespaces: +yes$/m);
  const json = JSON.parse((await tsbuildOk([...at(), 'info', '--format', 'json'])).stdout) as { isolation: { mode: string }; probe: { capSysAdmin: boolean }; root: string };
  assert.is(json.isolation.mode, 'overlay');
  assert.is(json.probe.capSysAdmin, true);
  // The probe is cached in the root, one entry per environment.
  const cache = JSON.parse(await readFile(join(env.root, 'isolation-probe.json'), 'utf8')) as Record<string, unknown>;
  assert.ok(Object.keys(cache).length >= 1);
});

test('without CAP_SYS_ADMIN: info says rootless (entering a user namespace); --isolation overlay is refused with the reason', async () => {
  const info = await tsbuildWithoutSysAdmin(['--root', env.root, 'info']);
  assert.is(info.code, 0, info.stderr);
  assert.match(info.stdout, /^Isolation: +rootless \(root without CAP_SYS_ADMIN: a user namespace of its own/m);
  assert.match(info.stdout, /^ {2}CAP_SYS_ADMIN: +no$/m);
  const dir = await env.context('FROM busybox\nRUN true\n');
  const r = await tsbuildWithoutSysAdmin(['--root', env.root, 'build', '--isolation', 'overlay', dir]);
  assert.is(r.code, 2);
  assert.match(r.stderr, /--isolation overlay is not possible here: it needs real root with CAP_SYS_ADMIN, and this is root without CAP_SYS_ADMIN/);
});

test('a bad mode is a usage error naming where it came from', async () => {
  const dir = await env.context('FROM busybox\n');
  const flag = await tsbuild([...at(), 'build', '--isolation', 'vm', dir]);
  assert.is(flag.code, 2);
  assert.match(flag.stderr, /--isolation: expected one of auto, overlay, rootless, chroot, got "vm"/);
  const envVar = await tsbuild([...at(), 'build', dir], { env: { TSBUILD_ISOLATION: 'jail' } });
  assert.is(envVar.code, 2);
  assert.match(envVar.stderr, /\$TSBUILD_ISOLATION: expected one of auto, overlay, rootless, chroot, got "jail"/);
  const cfg = join(env.work, 'tsbuild.toml');
  await writeFile(cfg, '[build]\nisolation = "overlay"\n');
  const fromFile = await tsbuildOk([...at(), '--config', cfg, 'build', '--progress', 'plain', dir]);
  assert.match(fromFile.stderr, /^#0 isolation: overlay/);
});

test.run();

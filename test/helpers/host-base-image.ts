import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readlink, realpath, rm, symlink, writeFile, cp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { makeBusyboxRootfs } from './busybox-rootfs.js';
import { tsbuildOk } from './cli.js';

const pexec = promisify(execFile);

/** What tsbuild's image needs from its base (Dockerfile), and the Debian package that has it. */
const PROGRAMS: Readonly<Record<string, string>> = {
  node: 'nodejs',
  runc: 'runc',
  newuidmap: 'uidmap',
  newgidmap: 'uidmap',
  slirp4netns: 'slirp4netns',
};

/**
 * A stand-in for `node:20-bookworm-slim` + runc, uidmap and slirp4netns, made offline from this
 * host: busybox-static as /bin/sh and every applet (busybox-rootfs.ts, with /etc/passwd and
 * /etc/group), the host's node, npm, runc, newuidmap, newgidmap and slirp4netns at their host
 * paths, each with the shared libraries `ldd` names (at the same paths) and the dynamic loader.
 * The first call builds it (FROM scratch + COPY rootfs/ /) into an OCI archive kept for the rest
 * of the test process (removed at exit); every call loads that archive into `root` as `name`.
 */
export async function loadHostBase(root: string, name = 'host-base'): Promise<void> {
  const archive = await (cached ??= buildArchive());
  await tsbuildOk(['--root', root, 'load', '-i', archive]);
  if (name !== ARCHIVE_NAME) await tsbuildOk(['--root', root, 'tag', ARCHIVE_NAME, name]);
}

const ARCHIVE_NAME = 'host-base';
let cached: Promise<string> | undefined;

async function buildArchive(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tsbuild-host-base-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const ctx = join(dir, 'ctx');
  const archive = join(dir, 'host-base.tar');
  try {
    await makeHostRootfs(join(ctx, 'rootfs'));
    await writeFile(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY rootfs/ /\nENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nCMD ["sh"]\n');
    await tsbuildOk(['--root', join(dir, 'root'), 'build', '-t', ARCHIVE_NAME, '--output', `type=oci,dest=${archive}`, ctx]);
    return archive;
  } catch (e) {
    cached = undefined;
    throw e;
  } finally {
    await rm(ctx, { recursive: true, force: true });
    await rm(join(dir, 'root'), { recursive: true, force: true });
  }
}

/** Writes the rootfs described at loadHostBase into `dir`. */
export async function makeHostRootfs(dir: string): Promise<void> {
  await makeBusyboxRootfs(dir);
  // Scripts' `#!/usr/bin/env node` (npm, tsbuild's bundle), as Debian has it.
  await symlink('/bin/busybox', join(dir, 'usr/bin/env'));
  const libs = new Set<string>();
  for (const [prog, pkg] of Object.entries(PROGRAMS)) {
    const path = await which(prog).catch(() => {
      throw new Error(`host-base-image: ${prog} is not on this host's PATH (apt-get install ${pkg})`);
    });
    await copyInto(dir, path);
    for (const lib of await sharedLibraries(path)) libs.add(lib);
  }
  for (const lib of libs) await copyInto(dir, lib);
  await copyNpm(dir);
}

/** The absolute paths `ldd` resolves for `bin`, the loader included (vdso has none). */
async function sharedLibraries(bin: string): Promise<string[]> {
  const { stdout } = await pexec('ldd', [bin]);
  const out: string[] = [];
  for (const line of stdout.split('\n')) {
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m) out.push(m[1]!);
  }
  return out;
}

/** npm as Debian/NodeSource lay it out: the package dir, and a symlink on the PATH to its cli. */
async function copyNpm(dir: string): Promise<void> {
  const link = await which('npm').catch(() => {
    throw new Error('host-base-image: npm is not on this host (apt-get install npm)');
  });
  const cli = await realpath(link); // …/node_modules/npm/bin/npm-cli.js
  const pkg = dirname(dirname(cli));
  await mkdir(dirname(join(dir, pkg)), { recursive: true });
  await cp(pkg, join(dir, pkg), { recursive: true, verbatimSymlinks: true });
  await mkdir(dirname(join(dir, link)), { recursive: true });
  await rm(join(dir, link), { force: true });
  await symlink(await readlink(link).catch(() => cli), join(dir, link));
}

/** Copies host file `path` (symlinks followed) to the same path under `dir`, mode kept. */
async function copyInto(dir: string, path: string): Promise<void> {
  const dest = join(dir, path);
  await mkdir(dirname(dest), { recursive: true });
  await rm(dest, { force: true });
  await copyFile(await realpath(path), dest);
  await chmod(dest, 0o755);
}

async function which(prog: string): Promise<string> {
  const { stdout } = await pexec('sh', ['-c', 'command -v "$1"', 'sh', prog]);
  const path = stdout.trim();
  if (!path.startsWith('/')) throw new Error(`${prog} not found`);
  return path;
}

import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeBusyboxRootfs } from './busybox-rootfs.js';
import { tsbuildOk } from './cli.js';

/**
 * Builds the `busybox` base image into `root` with tsbuild itself (FROM scratch + COPY rootfs/ /),
 * the way the README's first run does, so tests never need a registry.
 */
export async function buildBusyboxBase(root: string, name = 'busybox'): Promise<void> {
  const ctx = await mkdtemp(join(tmpdir(), 'tsbuild-base-'));
  try {
    await makeBusyboxRootfs(join(ctx, 'rootfs'));
    await writeFile(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY rootfs/ /\nCMD ["sh"]\n');
    await tsbuildOk(['--root', root, 'build', '-t', name, ctx]);
  } finally {
    await rm(ctx, { recursive: true, force: true });
  }
}

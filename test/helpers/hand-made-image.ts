import { execFile } from 'node:child_process';
import { chown, chmod, mkdir, mkdtemp, readFile, rm, symlink, link, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { sha256, type Digest } from '../../src/oci/digest.js';
import { hostPlatform, type Descriptor, type ImageConfig } from '../../src/oci/image.js';
import type { ImageLayout } from '../../src/oci/image-layout.js';
import { MediaType } from '../../src/oci/media-types.js';
import { makeBusyboxRootfs } from './busybox-rootfs.js';

const run = promisify(execFile);

/** What {@link makeHandMadeImage} stored. */
export interface HandMadeImage {
  manifest: Descriptor;
  config: Descriptor;
  layers: Descriptor[];
  diffIds: Digest[];
}

/**
 * Builds a two-layer image without tsbuild, with GNU tar only, into `layout` and tags it `name`:
 * layer 1 is the busybox rootfs (`tar -C dir -czf`); layer 2 adds files owned by uid 1000
 * (mode 0600, a 0700 dir, a symlink, a hardlink), overwrites /etc/motd... and deletes
 * `/bin/vi` and `/etc/group` through `.wh.` whiteouts and makes /var opaque with a new file.
 * The config carries the diffIDs (sha256 of the uncompressed tars).
 */
export async function makeHandMadeImage(layout: ImageLayout, name: string): Promise<HandMadeImage> {
  const work = await mkdtemp(join(tmpdir(), 'tsbuild-handimg-'));
  try {
    const l1 = join(work, 'l1');
    await makeBusyboxRootfs(l1);
    await mkdir(join(l1, 'var', 'old'), { recursive: true });
    await writeFile(join(l1, 'var', 'old', 'file'), 'removed by the opaque dir\n');
    const l2 = join(work, 'l2');
    await mkdir(join(l2, 'etc'), { recursive: true });
    await mkdir(join(l2, 'bin'), { recursive: true });
    await mkdir(join(l2, 'var'), { recursive: true });
    await mkdir(join(l2, 'home', 'app', 'private'), { recursive: true });
    await writeFile(join(l2, 'home', 'app', 'private', 'secret'), 'top secret\n');
    await chmod(join(l2, 'home', 'app', 'private', 'secret'), 0o600);
    await chmod(join(l2, 'home', 'app', 'private'), 0o700);
    await chown(join(l2, 'home', 'app', 'private', 'secret'), 1000, 1000);
    await chown(join(l2, 'home', 'app', 'private'), 1000, 1000);
    await chown(join(l2, 'home', 'app'), 1000, 1000);
    await writeFile(join(l2, 'etc', 'motd'), 'hello from layer 2\n');
    await link(join(l2, 'etc', 'motd'), join(l2, 'etc', 'motd.link'));
    await symlink('../etc/motd', join(l2, 'bin', 'motd'));
    await writeFile(join(l2, 'bin', '.wh.vi'), '');
    await writeFile(join(l2, 'etc', '.wh.group'), '');
    await writeFile(join(l2, 'var', '.wh..wh..opq'), '');
    await writeFile(join(l2, 'var', 'new'), 'fresh\n');

    const layers: Descriptor[] = [];
    const diffIds: Digest[] = [];
    for (const [i, dir] of [l1, l2].entries()) {
      const tgz = join(work, `layer${i}.tar.gz`);
      await run('tar', ['-C', dir, '--numeric-owner', '-czf', tgz, '.']);
      const gz = await readFile(tgz);
      diffIds.push(sha256(gunzipSync(gz)));
      const { digest, size } = await layout.blobs.putBytes(gz);
      layers.push({ mediaType: MediaType.ociLayerGzip, digest, size });
    }
    const cfg: ImageConfig = {
      created: '2024-01-01T00:00:00Z',
      architecture: hostPlatform().architecture,
      os: 'linux',
      config: { Cmd: ['sh'], Env: ['PATH=/bin'] },
      rootfs: { type: 'layers', diff_ids: diffIds },
      history: [{ created_by: 'busybox rootfs' }, { created_by: 'layer 2' }],
    };
    const c = await layout.blobs.putBytes(JSON.stringify(cfg));
    const config: Descriptor = { mediaType: MediaType.ociConfig, ...c };
    const m = await layout.blobs.putBytes(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociManifest, config, layers }));
    const manifest: Descriptor = { mediaType: MediaType.ociManifest, ...m };
    await layout.tag(name, manifest);
    return { manifest, config, layers, diffIds };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

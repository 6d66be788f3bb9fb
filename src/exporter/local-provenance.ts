import { open, rm } from 'node:fs/promises';
import { posix } from 'node:path';
import type { Ctx } from '../ctx.js';
import type { ContentStore } from '../oci/content-store.js';
import type { Descriptor } from '../oci/image.js';
import { filesystemImages } from '../oci/image-tree.js';
import { atInRoot } from '../oci/in-root.js';
import { rootfsFileDigests } from './rootfs-digests.js';

/** The in-toto statement about one image's files (the i-th platform of the build). */
export type StatementFor = (index: number, subjects: { name: string; digest: { sha256: string } }[]) => Record<string, unknown>;

/**
 * Attestations of a `type=local` output, as BuildKit's local exporter writes them
 * (exporter/local/fs.go): `provenance.json` beside each image's files (in its platform
 * directory when there are several, `provenance.<platform>.json` each with platform-split=false), the statement's subjects being every regular file of that
 * image with its sha256; mode 0600, the epoch's time (else 1970) as its mtime. It replaces a
 * file of that name from the image, as BuildKit's merged filesystem does.
 */
export async function writeLocalProvenance(blobs: ContentStore, top: Descriptor, dest: string, statementFor: StatementFor, ctx: Ctx, mtime = 0, split?: boolean): Promise<void> {
  const images = await filesystemImages(blobs, top, split);
  for (const [i, { descriptor, dir, platform }] of images.entries()) {
    ctx.signal.throwIfAborted();
    const subjects = (await rootfsFileDigests(blobs, descriptor, ctx.signal)).map(([name, sha256]) => ({ name, digest: { sha256 } }));
    const data = `${JSON.stringify(statementFor(i, subjects), null, 2)}`;
    // The leaf is never followed: a link of that name from the image is replaced, not written through.
    // Several platforms in one directory (platform-split=false): provenance.linux_amd64.json each.
    const name = images.length > 1 && dir === '' ? `provenance.${platform}.json` : 'provenance.json';
    await atInRoot(dest, posix.join('/', dir, name), async (host) => {
      await rm(host, { force: true, recursive: true });
      const fh = await open(host, 'wx', 0o600);
      try {
        await fh.writeFile(data);
        await fh.utimes(mtime, mtime);
      } finally {
        await fh.close();
      }
    });
  }
}

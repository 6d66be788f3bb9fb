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

/** A file an attestation adds to a `type=local` or `type=tar` output, by its path there. */
export interface AttestationFile {
  readonly path: string;
  readonly data: string;
}

/**
 * Attestations of a `type=local` or `type=tar` output, as BuildKit's local and tar exporters
 * add them (exporter/local/fs.go): `provenance.json` beside each image's files (in its platform
 * directory when there are several, `provenance.<platform>.json` each with platform-split=false),
 * the statement's subjects being every regular file of that image with its sha256.
 */
export async function provenanceFiles(blobs: ContentStore, top: Descriptor, statementFor: StatementFor, ctx: Ctx, split?: boolean): Promise<AttestationFile[]> {
  const images = await filesystemImages(blobs, top, split);
  const out: AttestationFile[] = [];
  for (const [i, { descriptor, dir, platform }] of images.entries()) {
    ctx.signal.throwIfAborted();
    const subjects = (await rootfsFileDigests(blobs, descriptor, ctx.signal)).map(([name, sha256]) => ({ name, digest: { sha256 } }));
    const name = images.length > 1 && dir === '' ? `provenance.${platform}.json` : 'provenance.json';
    out.push({ path: posix.join(dir, name), data: JSON.stringify(statementFor(i, subjects), null, 2) });
  }
  return out;
}

/**
 * Writes `files` into the local output `dest`: mode 0600, `mtime` (the epoch's, else 1970). A
 * file of that name from the image is replaced, as BuildKit's merged filesystem does; the leaf
 * is never followed, so a link of that name is replaced, not written through.
 */
export async function writeAttestationFiles(dest: string, files: readonly AttestationFile[], mtime = 0): Promise<void> {
  for (const f of files) {
    await atInRoot(dest, `/${f.path}`, async (host) => {
      await rm(host, { force: true, recursive: true });
      const fh = await open(host, 'wx', 0o600);
      try {
        await fh.writeFile(f.data);
        await fh.utimes(mtime, mtime);
      } finally {
        await fh.close();
      }
    });
  }
}

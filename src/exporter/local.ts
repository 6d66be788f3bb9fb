import { mkdir } from 'node:fs/promises';
import { withByteProgress } from '../events.js';
import type { Ctx } from '../ctx.js';
import type { ContentStore } from '../oci/content-store.js';
import type { Descriptor } from '../oci/image.js';
import { readImage } from '../oci/image-reader.js';
import { BuildError } from '../errors.js';
import { filesystemImages } from '../oci/image-tree.js';
import { rootfsFileDigests } from './rootfs-digests.js';
import { mkdirInRoot, resolveInRoot } from '../oci/in-root.js';
import { unpackArchive } from '../oci/layer/unpack-archive.js';
import { DEFAULT_EXPANSION_LIMITS, type ExpansionLimits } from '../oci/layer/expansion-guard.js';

/**
 * Writes the image's root filesystem into `destDir` as plain files (BuildKit's `type=local`):
 * each layer, base first, is decompressed and applied in `flatten` mode, so whiteouts delete
 * what lower layers wrote and no whiteout markers remain. `destDir` is created if missing;
 * existing content is overwritten where the image has the same paths. Layers stream from the
 * store (memory does not grow with layer size). Layer blobs were verified when stored. An image
 * index is written as one subdirectory per platform. `mtime` (seconds), when given, is every
 * file's time instead of the layers' own.
 */
export async function exportLocal(blobs: ContentStore, manifest: Descriptor, destDir: string, ctx: Ctx, limits: ExpansionLimits = DEFAULT_EXPANSION_LIMITS, mtime?: number, split?: boolean): Promise<void> {
  const images = await filesystemImages(blobs, manifest, split);
  if (images.length > 1 && split === false) await checkNoOverwrite(blobs, images, ctx);
  await mkdir(destDir, { recursive: true });
  for (const { descriptor, dir } of images) {
    // dest may hold an earlier export whose files include a link named like a platform dir.
    await mkdirInRoot(destDir, dir, 0o755);
    await writeImageFiles(blobs, descriptor, await resolveInRoot(destDir, dir), ctx, limits, mtime);
  }
}

async function writeImageFiles(blobs: ContentStore, manifest: Descriptor, destDir: string, ctx: Ctx, limits: ExpansionLimits, mtime: number | undefined): Promise<void> {
  const img = await readImage(blobs, manifest);
  for (const layer of img.layers) {
    ctx.signal.throwIfAborted();
    const raw = withByteProgress(blobs.openRead(layer.digest), ctx.events, `export ${layer.digest}`, layer.size);
    // A loaded image's layers were never unpacked: this may be the first look at a bomb.
    await unpackArchive(raw, destDir, { mode: 'flatten', limits, subject: `layer ${layer.digest}`, compressedSize: layer.size, ...(mtime === undefined ? {} : { mtime }) }, ctx.signal);
  }
}

/**
 * platform-split=false merges every platform's files into one directory; as BuildKit
 * (exporter/local/export.go) a file two platforms both have is an error, not a silent overwrite.
 */
async function checkNoOverwrite(blobs: ContentStore, images: readonly { descriptor: Descriptor; platform: string }[], ctx: Ctx): Promise<void> {
  const seen = new Map<string, string>();
  for (const { descriptor, platform } of images) {
    for (const [path] of await rootfsFileDigests(blobs, descriptor, ctx.signal)) {
      const other = seen.get(path);
      if (other !== undefined) {
        throw new BuildError('USAGE', `cannot overwrite ${path} from ${other.replaceAll('_', '/')} with ${platform.replaceAll('_', '/')} when split option is disabled`, {
          hint: 'drop platform-split=false, or give each platform its own file names',
        });
      }
      seen.set(path, platform);
    }
  }
}

import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import type { ContentStore } from '../oci/content-store.js';
import { decompressStream } from '../oci/decompress.js';
import type { Descriptor } from '../oci/image.js';
import { readImage } from '../oci/image-reader.js';
import { readTar } from '../oci/tar/tar-reader.js';

const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';

/**
 * The sha256 of every regular file of an image's root filesystem, by path (no leading slash),
 * sorted: the subjects BuildKit's local exporter gives a provenance statement (exporter/local
 * fs.go walks the output). Read from the layers, whiteouts applied, never from the exported
 * directory, so no path from the image is ever looked up on the host.
 */
export async function rootfsFileDigests(blobs: ContentStore, manifest: Descriptor, signal: AbortSignal): Promise<[string, string][]> {
  const files = new Map<string, string>();
  const dropUnder = (dir: string) => {
    for (const k of [...files.keys()]) if (dir === '' || k.startsWith(`${dir}/`)) files.delete(k);
  };
  for (const layer of (await readImage(blobs, manifest, undefined, { anyPlatform: true })).layers) {
    const stream = await decompressStream(blobs.openRead(layer.digest), signal);
    try {
      for await (const { entry, body } of readTar(stream, signal)) {
        const path = posix.normalize(`/${entry.path}`).slice(1);
        const base = posix.basename(path);
        const dir = posix.dirname(path) === '.' ? '' : posix.dirname(path);
        if (base === OPAQUE) {
          dropUnder(dir);
          continue;
        }
        if (base.startsWith(WHITEOUT)) {
          const gone = posix.join(dir, base.slice(WHITEOUT.length));
          files.delete(gone);
          dropUnder(gone);
          continue;
        }
        if (path === '') continue;
        if (entry.type === 'file') {
          const h = createHash('sha256');
          for await (const chunk of body) h.update(chunk);
          dropUnder(path);
          files.set(path, h.digest('hex'));
        } else if (entry.type === 'hardlink' && entry.linkname !== undefined) {
          const target = files.get(posix.normalize(`/${entry.linkname}`).slice(1));
          if (target) files.set(path, target);
          else files.delete(path);
        } else {
          // A directory, link or device replaces a file of that name (a directory keeps what is below it).
          files.delete(path);
          if (entry.type !== 'dir') dropUnder(path);
        }
      }
    } finally {
      stream.destroy();
    }
  }
  return [...files].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

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
    // Whiteouts and opaque markers hide what the layers below have, never this layer's own
    // entries (whatever their order in the tar): gather the layer, remove, then add.
    const removed: string[] = [];
    const opaque: string[] = [];
    const added: { path: string; sha256?: string; link?: string; dir: boolean }[] = [];
    const stream = await decompressStream(blobs.openRead(layer.digest), signal);
    try {
      for await (const { entry, body } of readTar(stream, signal)) {
        const path = posix.normalize(`/${entry.path}`).slice(1);
        const base = posix.basename(path);
        const dir = posix.dirname(path) === '.' ? '' : posix.dirname(path);
        if (base === OPAQUE) opaque.push(dir);
        else if (base.startsWith(WHITEOUT)) removed.push(posix.join(dir, base.slice(WHITEOUT.length)));
        else if (path === '') continue;
        else if (entry.type === 'file') {
          const h = createHash('sha256');
          for await (const chunk of body) h.update(chunk);
          added.push({ path, sha256: h.digest('hex'), dir: false });
        } else if (entry.type === 'hardlink' && entry.linkname !== undefined) {
          added.push({ path, link: posix.normalize(`/${entry.linkname}`).slice(1), dir: false });
        } else added.push({ path, dir: entry.type === 'dir' });
      }
    } finally {
      stream.destroy();
    }
    for (const dir of opaque) dropUnder(dir);
    for (const gone of removed) {
      files.delete(gone);
      dropUnder(gone);
    }
    for (const a of added) {
      // A directory keeps what is below it; anything else replaces a directory of that name.
      if (!a.dir) dropUnder(a.path);
      const digest = a.sha256 ?? (a.link !== undefined ? files.get(a.link) : undefined);
      if (digest) files.set(a.path, digest);
      else files.delete(a.path);
    }
  }
  return [...files].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

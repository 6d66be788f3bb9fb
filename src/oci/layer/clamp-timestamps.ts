import { Readable } from 'node:stream';
import type { ContentStore } from '../content-store.js';
import { decompressStream } from '../decompress.js';
import type { Descriptor } from '../image.js';
import { readTar } from '../tar/tar-reader.js';
import { intoContentStore, writeLayer, type LayerBlob } from './blob.js';

/**
 * BuildKit's `rewrite-timestamp`: a copy of layer `layer` in which every entry's mtime later
 * than `epoch` (seconds) is `epoch`; earlier ones stay. The entries are otherwise rewritten as
 * read (order, owners, modes, xattrs, links, bodies), through the same tar writer as a layer made
 * by a build, uncompressed as a build stores it (outputs compress), so the result is what the build would have written had the files
 * carried those times. The new blob goes into `blobs`; streamed, memory does not grow with the
 * layer. Only for layers this build made: a base image's layers are never rewritten.
 */
export async function clampLayerTimestamps(blobs: ContentStore, layer: Descriptor, epoch: number, signal: AbortSignal): Promise<Omit<LayerBlob, 'empty'>> {
  return writeLayer(
    async (writer) => {
      const tar = await decompressStream(blobs.openRead(layer.digest), signal);
      try {
        for await (const { entry, body } of readTar(tar, signal)) {
          const clamped = entry.mtime > epoch ? { ...entry, mtime: epoch } : entry;
          await writer.add(clamped, entry.type === 'file' && entry.size > 0 ? Readable.from(body) : undefined);
        }
      } finally {
        tar.destroy();
      }
    },
    intoContentStore(blobs, signal),
    { compression: 'uncompressed' },
    signal,
  );
}

import type { Readable } from 'node:stream';
import { MAX_EPOCH } from '../frontend/source-date-epoch.js';
import { decompressStream } from '../oci/decompress.js';
import { TarFormatError } from '../oci/tar/tar-entry.js';
import { readTar } from '../oci/tar/tar-reader.js';

/**
 * SOURCE_DATE_EPOCH from an http source that sent no Last-Modified (a context, a named context,
 * a source stage's ADD): the newest mtime of a regular file in the archive, as BuildKit's
 * archiveMaxTimeFromRef (frontend/dockerfile/dockerfile2llb/epoch.go). Anything that is not a
 * (compressed) tar, or an archive without files, has none: undefined, as BuildKit's
 * allowNonArchive. Only headers are read; bodies are skipped. `input` is consumed and destroyed.
 */
export async function archiveMaxTime(input: Readable, signal: AbortSignal): Promise<Date | undefined> {
  let stream: Readable | undefined;
  try {
    stream = await decompressStream(input, signal);
    let max: number | undefined;
    for await (const { entry } of readTar(stream, signal)) {
      if (entry.type !== 'file') continue;
      const t = Math.floor(entry.mtime);
      if (t >= 0 && t <= MAX_EPOCH && (max === undefined || t > max)) max = t;
    }
    return max === undefined ? undefined : new Date(max * 1000);
  } catch (e) {
    if (signal.aborted) throw e;
    if (e instanceof TarFormatError || isDecompressError(e)) return undefined;
    throw e;
  } finally {
    (stream ?? input).destroy();
  }
}

/** zlib's and the external decompressors' complaints: a file that only looked compressed. */
function isDecompressError(e: unknown): boolean {
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' && code.startsWith('Z_');
}

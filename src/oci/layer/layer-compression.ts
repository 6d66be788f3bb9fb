import { MediaType } from '../media-types.js';

/** How a layer blob is stored: BuildKit's `compression=` values. */
export type LayerCompression = 'gzip' | 'zstd' | 'uncompressed';

/** An output's compression choice: BuildKit's `compression`, `compression-level`, `force-compression`. */
export interface CompressionOptions {
  readonly compression: LayerCompression;
  /** Absent: the default for the algorithm ({@link defaultLevel}). */
  readonly level?: number;
  /** Recompress layers already compressed otherwise (a base image's gzip layers to zstd…). */
  readonly force?: boolean;
}

/**
 * The default gzip level, 1, chosen by measurement on a 543 MB layer of real build output
 * (a tar of /usr/lib: binaries, libraries, text). BuildKit compresses with Go's compress/gzip
 * at DefaultCompression, one core: docker 20.10's push (the same Go gzip; its BuildKit has no
 * compressing exporter to time) made a 235.94 MB blob, in 22.7 s on a busy 2-core machine.
 * ParallelGzip on the same tar (2 cores): level 6 235.63 MB (BuildKit's size), 5 236.61,
 * 4 240.03, 3 244.83, 2 246.86, 1 249.92 (+5.9%). CPU time for it: level 1 5.6 s, level 6
 * 9.6 s (zstd -3: 1.8 s); on the 518 MB bench layer `pigz -p 2 -1` takes 2.6 s, `-6` 6.9 s.
 * Levels 1-3 are zlib's fast deflate, 4-9 its lazy one. Level 1 makes an export or push of a
 * fresh layer 1.7-2.6x cheaper than 6 for blobs 6% larger; `compression-level=6` gives
 * BuildKit's size when bytes matter more than time.
 */
export const DEFAULT_GZIP_LEVEL = 1;
/** zstd's own default (3), as BuildKit's (klauspost/compress SpeedDefault ≈ level 3). */
export const DEFAULT_ZSTD_LEVEL = 3;

export const DEFAULT_COMPRESSION: CompressionOptions = { compression: 'gzip' };

export function defaultLevel(c: LayerCompression): number {
  return c === 'gzip' ? DEFAULT_GZIP_LEVEL : c === 'zstd' ? DEFAULT_ZSTD_LEVEL : 0;
}


/** The media type of a layer in `c`, in OCI's or Docker's family (`docker`). */
export function layerMediaType(c: LayerCompression, docker = false): string {
  if (docker) return c === 'gzip' ? MediaType.dockerLayerGzip : c === 'zstd' ? MediaType.dockerLayerZstd : MediaType.dockerLayer;
  return c === 'gzip' ? MediaType.ociLayerGzip : c === 'zstd' ? MediaType.ociLayerZstd : MediaType.ociLayer;
}

/**
 * The compression a layer media type says, or undefined for what is not a (distributable)
 * layer tar: configs, attestation blobs, foreign layers (never converted: their bytes live elsewhere).
 */
export function compressionOfMediaType(mediaType: string | undefined): LayerCompression | undefined {
  switch (mediaType) {
    case MediaType.ociLayerGzip:
    case MediaType.dockerLayerGzip:
      return 'gzip';
    case MediaType.ociLayerZstd:
    case MediaType.dockerLayerZstd:
      return 'zstd';
    case MediaType.ociLayer:
    case MediaType.dockerLayer:
      return 'uncompressed';
    default:
      return undefined;
  }
}

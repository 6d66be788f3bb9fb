import type { Readable } from 'node:stream';
import { capBytes } from '../../byte-cap.js';
import { pipeline } from 'node:stream/promises';
import { formatBytes } from '../../byte-size.js';
import { BuildError } from '../../errors.js';

/** How far one archive (an ADD source) or one image layer may expand when unpacked. */
export interface ExpansionLimits {
  /** Decompressed tar bytes allowed whatever the compressed size: the disk an unpack may fill. */
  readonly maxExpandedBytes: number;
  /** Decompressed ÷ compressed size allowed past the first RATIO_FREE_BYTES. */
  readonly maxExpansionRatio: number;
  /** Tar members (files, dirs, links, whiteouts…) one archive may create. */
  readonly maxEntries: number;
}

/**
 * Below this many decompressed bytes the ratio is not checked: a small archive of a zeroed
 * disk image or a big log compresses 1000:1 and is harmless at this size.
 */
export const RATIO_FREE_BYTES = 1024 ** 3;

/**
 * Defaults no real image reaches but a bomb does. Real layers compress 2–10:1 (text-heavy ones
 * rarely 50:1), while a bomb relies on ratio: gzip reaches ~1000:1 on zeros, bzip2 and xz far
 * more. So the ratio is the main guard, bounding disk use by max(1 GiB, 100 × the input),
 * and the absolute cap is high (the largest real layers, ML images with baked-in models, are
 * tens of GiB). An absolute cap alone would either break such images or, set for CI disks,
 * let a 2 MB file fill them. A million members is several times the largest real layers
 * (a texlive-full or node_modules layer holds a few 100k), and each costs an inode.
 */
export const DEFAULT_EXPANSION_LIMITS: ExpansionLimits = {
  maxExpandedBytes: 1024 ** 4,
  maxExpansionRatio: 100,
  maxEntries: 1_000_000,
};

const CONFIG_TABLE = 'the [unpack] table of tsbuild.toml';

/**
 * Enforces ExpansionLimits on one archive while it streams: `wrap` counts decompressed bytes
 * and fails the stream (stopping the decompressor) the moment they pass the limit, so neither
 * memory nor disk grows with what a bomb would expand to; `countEntry` counts tar members.
 * Errors are BuildError('LIMIT_EXCEEDED') naming `subject` (e.g. `ADD x.tar.gz`, `layer sha256:…`).
 */
export class ExpansionGuard {
  readonly #limits: ExpansionLimits;
  readonly #subject: string;
  readonly #compressedSize: number;
  /** Bytes allowed for this archive: the absolute cap or the ratio's, whichever is lower. */
  readonly byteLimit: number;
  #entries = 0;

  constructor(limits: ExpansionLimits, subject: string, compressedSize: number) {
    this.#limits = limits;
    this.#subject = subject;
    this.#compressedSize = compressedSize;
    this.byteLimit = Math.min(limits.maxExpandedBytes, Math.max(RATIO_FREE_BYTES, limits.maxExpansionRatio * compressedSize));
  }

  /**
   * The decompressed stream, metered. Ownership of `decompressed` moves to the result: an error
   * or destroy of either ends both (and kills a decompressor child process).
   */
  wrap(decompressed: Readable): Readable {
    const meter = capBytes(this.byteLimit, () => this.#tooLarge());
    pipeline(decompressed, meter).catch(() => undefined); // the error surfaces on meter
    return meter;
  }

  /** Call once per tar member; throws past maxEntries. Bound, so it can be passed as a callback. */
  readonly countEntry = (): void => {
    if (++this.#entries <= this.#limits.maxEntries) return;
    throw new BuildError('LIMIT_EXCEEDED', `${this.#subject}: the archive has more than ${this.#limits.maxEntries} entries`, {
      hint: `raise max-entries (now ${this.#limits.maxEntries}) in ${CONFIG_TABLE}`,
    });
  };

  #tooLarge(): BuildError {
    const { maxExpandedBytes, maxExpansionRatio } = this.#limits;
    const byRatio = this.byteLimit < maxExpandedBytes;
    const why = byRatio
      ? `${maxExpansionRatio}× its compressed size of ${formatBytes(this.#compressedSize)}`
      : `max-expanded-bytes`;
    return new BuildError('LIMIT_EXCEEDED', `${this.#subject}: the archive expands to more than ${formatBytes(this.byteLimit)} (${why}); a decompression bomb?`, {
      hint: byRatio
        ? `raise max-expansion-ratio (now ${maxExpansionRatio}; checked past the first ${formatBytes(RATIO_FREE_BYTES)}) in ${CONFIG_TABLE}`
        : `raise max-expanded-bytes (now ${formatBytes(maxExpandedBytes)}) in ${CONFIG_TABLE}`,
    });
  }
}

import type { Readable } from 'node:stream';
import { decompressStream } from '../decompress.js';
import { applyLayer, type ApplyOptions } from './apply.js';
import { ExpansionGuard, type ExpansionLimits } from './expansion-guard.js';

/** What one archive is unpacked under: the limits, how errors name it, and its compressed size. */
export interface UnpackOptions extends Pick<ApplyOptions, 'mode' | 'mtime' | 'owner'> {
  readonly limits: ExpansionLimits;
  /** Names the archive in errors: `ADD x.tar.gz`, `layer sha256:…`. */
  readonly subject: string;
  readonly compressedSize: number;
}

/**
 * Decompresses a (possibly compressed) tar and applies it onto `dest`, metered by an
 * ExpansionGuard so that a bomb stops while it streams. Owns `compressed`: it is destroyed
 * when the unpack ends, however it ends.
 */
export async function unpackArchive(compressed: Readable, dest: string, opts: UnpackOptions, signal: AbortSignal): Promise<void> {
  const guard = new ExpansionGuard(opts.limits, opts.subject, opts.compressedSize);
  let tar: Readable;
  try {
    tar = guard.wrap(await decompressStream(compressed, signal));
  } catch (e) {
    compressed.destroy();
    throw e;
  }
  try {
    await applyLayer(tar, dest, { mode: opts.mode, onEntry: guard.countEntry, ...(opts.mtime === undefined ? {} : { mtime: opts.mtime }), ...(opts.owner ? { owner: opts.owner } : {}) }, signal);
  } finally {
    tar.destroy();
    compressed.destroy();
  }
}

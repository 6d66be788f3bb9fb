import type { Readable } from 'node:stream';

/**
 * Byte caps on what tsbuild reads from a server into memory. They count the bytes that actually
 * arrive, never Content-Length: a hostile server can lie about it or send chunked data forever.
 */
export const BODY_LIMITS = {
  /** containerd's resolver and the distribution registry both cap manifests and indexes at 4 MiB. */
  manifest: 4 << 20,
  /**
   * Image configs are small, but history and BuildKit's inline cache can swell them; containerd
   * reads them without a cap, so pick a generous one. Cache configs share it.
   */
  config: 16 << 20,
  /** A bearer token response is a few KiB of JWT; refresh tokens included, 1 MiB is plenty. */
  token: 1 << 20,
  /** As containerd: only the first 64 kB of an error body is read, for its OCI error codes. */
  errorBody: 64_000,
} as const;

/**
 * The whole of `body` in memory, or `tooLarge()` thrown as soon as more than `max` bytes have
 * arrived; the body is destroyed then, which drops the connection (no need to drain it).
 * Stream errors (reset, timeout) are thrown as they come.
 */
export async function readBounded(body: Readable, max: number, tooLarge: () => Error): Promise<Buffer> {
  const parts: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > max) throw tooLarge();
      parts.push(chunk);
    }
  } finally {
    // Leaving the loop early (cap or error) must not leave the socket half-read.
    if (!body.readableEnded) body.destroy();
  }
  return Buffer.concat(parts, total);
}

/**
 * The first `max` bytes of an error body as text, for its message; the rest is dropped with the
 * connection. Never throws: a body that fails or stalls yields what arrived before.
 */
export async function readErrorBody(body: Readable, max: number = BODY_LIMITS.errorBody): Promise<string> {
  const parts: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      parts.push(chunk);
      total += chunk.length;
      if (total >= max) break;
    }
  } catch {
    // What arrived is all we get.
  } finally {
    if (!body.readableEnded) body.destroy();
  }
  return Buffer.concat(parts).subarray(0, max).toString('utf8');
}

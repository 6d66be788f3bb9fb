/** Node's codes for a TLS peer certificate that fails verification. */
const CERT_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * The certificate verification failure (`code: message`) somewhere in `e`'s cause chain, if any.
 * fetch wraps the socket's error (`TypeError: fetch failed`, cause: the TLS error), so the chain
 * is walked; a few levels deep at most.
 */
export function certificateError(e: unknown): string | undefined {
  for (let cur = e as { code?: unknown; message?: string; cause?: unknown } | undefined, depth = 0; cur && depth < 5; cur = cur.cause as typeof cur, depth++) {
    if (typeof cur.code === 'string' && CERT_CODES.has(cur.code)) return `${cur.code}: ${cur.message ?? ''}`;
  }
  return undefined;
}

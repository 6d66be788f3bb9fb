import type { Agent } from 'undici';
import { deferredCaTrust } from './extra-ca-certs.js';

/**
 * How long tsbuild waits on a server before giving up: for the TCP (and TLS) connection, for the
 * response headers once the request is sent, and between two chunks of a body. Every input is
 * hostile: a registry or web server that accepts a connection and then says nothing must not
 * hang a build. Set in tsbuild.toml's `[network]` table.
 */
export interface HttpTimeouts {
  readonly connectMs: number;
  readonly responseMs: number;
  readonly idleMs: number;
}

/** Generous enough for a slow registry across the world, short enough that a stall is noticed. */
export const DEFAULT_HTTP_TIMEOUTS: HttpTimeouts = { connectMs: 30_000, responseMs: 60_000, idleMs: 60_000 };

/**
 * The undici Agent options of every connection tsbuild makes: they enforce `t` (undici's own
 * timers, so no hand-made ones) and trust what NODE_EXTRA_CA_CERTS names (deferredCaTrust).
 */
export function agentOptions(t: HttpTimeouts): Pick<Agent.Options, 'headersTimeout' | 'bodyTimeout'> & { connect: { timeout: number; ca?: string[] } } {
  return { connect: { timeout: t.connectMs, ...deferredCaTrust() }, headersTimeout: t.responseMs, bodyTimeout: t.idleMs };
}

const TIMEOUT_CODES = ['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT'] as const;

/**
 * When `e` (or an error in its cause chain: fetch wraps them in `TypeError: fetch failed`) is
 * one of undici's timeouts, what happened in words: `no response within 30s`. Else undefined.
 */
export function timeoutDescription(e: unknown, t: HttpTimeouts): string | undefined {
  for (let cur = e as { code?: unknown; cause?: unknown } | undefined, depth = 0; cur && typeof cur === 'object' && depth < 5; cur = cur.cause as typeof cur, depth++) {
    switch (cur.code as (typeof TIMEOUT_CODES)[number] | undefined) {
      case 'UND_ERR_CONNECT_TIMEOUT':
        return `could not connect within ${formatSeconds(t.connectMs)}`;
      case 'UND_ERR_HEADERS_TIMEOUT':
        return `no response within ${formatSeconds(t.responseMs)}`;
      case 'UND_ERR_BODY_TIMEOUT':
        return `no data for ${formatSeconds(t.idleMs)}`;
      default:
    }
  }
  return undefined;
}

/** `30s`, `1.5s`, `250ms`: short, for one-line messages. */
export function formatSeconds(ms: number): string {
  return ms < 1000 ? `${ms}ms` : `${Number((ms / 1000).toFixed(1))}s`;
}

/**
 * The innermost message of a transfer failure worth showing (undici's `fetch failed` and
 * `terminated` only wrap the real cause): `other side closed`, `read ECONNRESET`.
 */
export function transferFailure(e: unknown, t: HttpTimeouts): string {
  const timeout = timeoutDescription(e, t);
  if (timeout) return timeout;
  let cur = e as { message?: unknown; code?: unknown; cause?: unknown } | undefined;
  for (let depth = 0; cur?.cause && typeof cur.cause === 'object' && depth < 5; depth++) cur = cur.cause as typeof cur;
  // An AggregateError (every address refused) has no message of its own, only a code.
  const msg = typeof cur?.message === 'string' && cur.message ? cur.message : typeof cur?.code === 'string' ? cur.code : String(e);
  // undici's words for a body cut short: a closed socket, or fewer bytes than Content-Length.
  const cutShort = cur?.code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH' || /^(other side closed|terminated)$/i.test(msg);
  return cutShort ? 'the server closed the connection before the body was complete' : msg;
}

import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Agent, Dispatcher } from 'undici';
import { abortable } from '../abortable.js';
import { isAbortError } from '../errors.js';
import { agentOptions, DEFAULT_HTTP_TIMEOUTS, timeoutDescription, type HttpTimeouts } from './http-timeouts.js';
import { isTemporaryStatus, RegistryError } from './registry-error.js';

/** A response whose body the caller must consume or `dump()`. */
export interface HttpResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: Dispatcher.ResponseData['body'];
  /** The URL that was requested, to resolve relative Location headers against. */
  readonly url: string;
}

export interface HttpRequest {
  readonly method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  readonly url: string;
  readonly headers?: Record<string, string>;
  /** Called once per attempt, so a retry sends the body again from the start. */
  readonly body?: () => Readable | Buffer | string;
}

export interface RetryPolicy {
  /** Attempts in all (1 = no retry). */
  readonly attempts: number;
  /** First backoff; doubles each time, with jitter. */
  readonly baseDelayMs: number;
  /** Cap on any one wait, Retry-After included. */
  readonly maxDelayMs: number;
  /**
   * Time one request may spend retrying, from its first attempt: no retry starts (and no
   * Retry-After is waited for) past it, so a registry answering 503 forever cannot stall a build.
   * Default DEFAULT_RETRY's.
   */
  readonly budgetMs?: number;
}

export const DEFAULT_RETRY: RetryPolicy & { budgetMs: number } = { attempts: 5, baseDelayMs: 250, maxDelayMs: 30_000, budgetMs: 60_000 };

const CLOSE_GRACE_MS = 500;

/**
 * Connection failures worth another attempt. undici's timeouts are not among them: each one
 * already waited the configured time, and a server that stalled once is likely to again.
 */
const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);

/** Whether `e` is a connection-level failure (reset, refused, closed socket) rather than an answer. */
export function isNetworkError(e: unknown): boolean {
  for (let cur = e as { code?: string; cause?: unknown } | undefined, depth = 0; cur && depth < 4; cur = cur.cause as typeof cur, depth++) {
    if (typeof cur.code === 'string' && NETWORK_CODES.has(cur.code)) return true;
    if (cur instanceof RegistryError && cur.status === undefined && cur.temporary) return true;
  }
  return false;
}

/**
 * HTTP for the registry client, on undici: one keep-alive pool per process, a second that
 * accepts self-signed certificates for registries named insecure, and retries with exponential
 * backoff on 429/5xx and connection resets, honouring Retry-After (capped, and within the
 * policy's total budget). Connect, response and idle-body timeouts are undici's own. Every
 * request takes the caller's AbortSignal.
 */
export class Transport {
  readonly retry: RetryPolicy;
  readonly timeouts: HttpTimeouts;
  /** Made at the first request: loading undici costs ~50 ms, and most builds never ask a registry. */
  #pools: Promise<{ secure: Agent; insecure: Agent; request: typeof import('undici').request }> | undefined;

  constructor(opts: { retry?: RetryPolicy; timeouts?: HttpTimeouts } = {}) {
    this.retry = opts.retry ?? DEFAULT_RETRY;
    this.timeouts = opts.timeouts ?? DEFAULT_HTTP_TIMEOUTS;
  }

  #connect(): Promise<{ secure: Agent; insecure: Agent; request: typeof import('undici').request }> {
    this.#pools ??= import('./undici.js').then(({ Agent, request }) => {
      const t = agentOptions(this.timeouts);
      return {
        secure: new Agent({ keepAliveTimeout: 10_000, ...t }),
        insecure: new Agent({ keepAliveTimeout: 10_000, ...t, connect: { ...t.connect, rejectUnauthorized: false } }),
        request,
      };
    });
    return this.#pools;
  }

  /**
   * Sends `req`; with `retry` (default true) a 429/5xx answer or a connection failure is retried
   * while attempts remain, and the last such answer is returned (not thrown). A connection
   * failure on the last attempt throws RegistryError('REGISTRY', temporary).
   */
  async send(req: HttpRequest, signal: AbortSignal, opts: { retry?: boolean; insecureTls?: boolean; registry: string }): Promise<HttpResponse> {
    const pools = await this.#connect();
    const attempts = opts.retry === false ? 1 : Math.max(1, this.retry.attempts);
    const deadline = Date.now() + (this.retry.budgetMs ?? DEFAULT_RETRY.budgetMs);
    for (let attempt = 1; ; attempt++) {
      signal.throwIfAborted();
      let res: HttpResponse;
      try {
        // undici does not abort a TLS handshake in progress (it waits for its connect timeout,
        // 10 s): the race lets Ctrl-C through at once, and close() destroys what is left.
        const r = await abortable(
          pools.request(req.url, {
            method: req.method,
            headers: req.headers,
            body: req.body?.(),
            signal,
            dispatcher: opts.insecureTls ? pools.insecure : pools.secure,
            // Registries redirect blob GETs to storage (S3, CDN); Repository follows those itself.
          }),
          signal,
        );
        res = { status: r.statusCode, headers: r.headers, body: r.body, url: req.url };
      } catch (e) {
        if (isAbortError(e) || signal.aborted) throw signal.reason ?? e;
        const timeout = timeoutDescription(e, this.timeouts);
        if (timeout) throw new RegistryError('REGISTRY', `registry ${opts.registry}: ${timeout} (${req.method} ${redact(req.url)})`, { registry: opts.registry, cause: e });
        if (!isNetworkError(e)) {
          throw new RegistryError('REGISTRY', `${req.method} ${redact(req.url)}: ${(e as Error).message}`, { registry: opts.registry, cause: e });
        }
        const wait = this.#backoff(attempt, undefined);
        if (attempt >= attempts || Date.now() + wait > deadline) {
          throw new RegistryError('REGISTRY', `${req.method} ${redact(req.url)}: connection failed: ${(e as Error).message}`, {
            registry: opts.registry,
            temporary: true,
            cause: e,
          });
        }
        await sleep(wait, undefined, { signal });
        continue;
      }
      if (isTemporaryStatus(res.status) && attempt < attempts) {
        const retryAfter = header(res.headers, 'retry-after');
        const wait = this.#backoff(attempt, retryAfter);
        // A Retry-After past the budget (before capping it): the server says it won't be ready
        // in time, so its answer stands now rather than after a pointless wait.
        if (Date.now() + Math.max(wait, parseRetryAfter(retryAfter) ?? 0) > deadline) return res;
        await res.body.dump().catch(() => undefined);
        await sleep(wait, undefined, { signal });
        continue;
      }
      return res;
    }
  }

  /**
   * Closes the pooled connections (so a CLI process can exit promptly). A graceful close waits
   * for requests in flight; after an abort one may still be connecting, so what has not closed
   * within CLOSE_GRACE_MS is destroyed.
   */
  async close(): Promise<void> {
    if (!this.#pools) return;
    const { secure, insecure } = await this.#pools;
    const closed = Promise.all([secure.close(), insecure.close()]).then(() => true);
    const late = sleep(CLOSE_GRACE_MS, false, { ref: false });
    if (!(await Promise.race([closed, late]))) await Promise.all([secure.destroy(), insecure.destroy()]);
  }

  #backoff(attempt: number, retryAfter: string | undefined): number {
    const fromHeader = parseRetryAfter(retryAfter);
    const exp = this.retry.baseDelayMs * 2 ** (attempt - 1);
    const jittered = exp / 2 + Math.random() * (exp / 2);
    return Math.min(this.retry.maxDelayMs, fromHeader ?? jittered);
  }
}

/** Retry-After as milliseconds: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : Math.max(0, t - now);
}

/** A single header value (the first, when repeated). */
export function header(headers: HttpResponse['headers'], name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/** Every value of a header that may repeat (WWW-Authenticate). */
export function headerAll(headers: HttpResponse['headers'], name: string): string[] {
  const v = headers[name.toLowerCase()];
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

/** Upload URLs carry state tokens; keep them out of error messages. */
function redact(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

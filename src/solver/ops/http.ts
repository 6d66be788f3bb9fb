import { createWriteStream } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Agent, Response } from 'undici';
import type { Ctx } from '../../ctx.js';
import { BuildError, isAbortError } from '../../errors.js';
import { Digester, type Digest } from '../../oci/digest.js';
import { agentOptions, DEFAULT_HTTP_TIMEOUTS, transferFailure, type HttpTimeouts } from '../../remote/http-timeouts.js';
import { certificateError } from '../../remote/tls-certificate-error.js';
import type { HttpOp, RootfsResult, Vertex } from '../graph.js';
import { HttpMemo, httpMemoDir, type HttpMemoEntry } from '../http-memo.js';
import type { OpHandler } from '../scheduler.js';
import type { Worker } from '../worker.js';
import { commitUpperAsLayer } from './commit-layer.js';

export interface HttpSourceOptions {
  /**
   * Whether the remembered response for the vertex's URL may be revalidated. False when the
   * cache is off for it (--no-cache): a forced refresh sends no conditional header, so the
   * server must send the content.
   */
  revalidate(v: Vertex): boolean;
  /** How long to wait for the server (tsbuild.toml `[network]`); default DEFAULT_HTTP_TIMEOUTS. */
  readonly timeouts?: HttpTimeouts;
}

/**
 * ADD <URL> (BuildKit's source/http): streams the response (redirects followed) into a file in
 * a fresh upperdir under the root's tmp, digesting it on the way, and commits that as a
 * one-layer rootfs holding only the file. Mode 0600 and mtime from Last-Modified (else the
 * epoch), as BuildKit.
 * A --checksum mismatch fails before anything is stored.
 *
 * As BuildKit, the ETag and Last-Modified of a 200 are remembered with the layer it became
 * (HttpMemo); the next request for the URL carries If-None-Match / If-Modified-Since, and a
 * 304 Not Modified yields that layer again without a download. A server sending neither
 * validator is downloaded from every time.
 */
export function httpHandler(worker: Worker, opts: HttpSourceOptions): OpHandler<HttpOp> {
  const memo = new HttpMemo(httpMemoDir(worker.dirs), (d) => worker.layers.has(d));
  const timeouts = opts.timeouts ?? DEFAULT_HTTP_TIMEOUTS;
  return {
    async run(op, _inputs, vertex, ctx) {
      // undici's own connect, headers and body-idle timers: a server that stalls fails the step.
      // Loaded here, not at startup: most builds have no ADD <url>.
      const { Agent, fetch } = await import('../../remote/undici.js');
      const agent = new Agent(agentOptions(timeouts));
      const http: HttpGet = { agent, fetch, timeouts, signal: ctx.signal };
      try {
        const known = opts.revalidate(vertex) ? matching(await memo.get(op.url), op) : undefined;
        let res = await request(op.url, known, http);
        if (res.status === 304 && known) {
          await res.body?.cancel().catch(() => undefined);
          const etag = res.headers.get('etag');
          // Not Modified: the stored layer is exactly what this response would have become
          // (same name, bytes and Last-Modified mtime), so nothing is downloaded or written.
          if (etag === null || known.etag === undefined || etag === known.etag) return { kind: 'rootfs', layers: [{ diffId: known.diffId }] };
          // A 304 naming another ETag than the one asked about describes content we don't have
          // (BuildKit refuses it): ask again, unconditionally.
          res = await request(op.url, undefined, http);
        }
        if (!res.ok || !res.body) {
          await res.body?.cancel().catch(() => undefined);
          throw new BuildError('HTTP_SOURCE', `failed to download ${op.url}: invalid response status ${res.status} ${res.statusText}`.trimEnd());
        }
        const got = await download(worker, op, res, http, ctx);
        await remember(memo, op.url, res, got);
        return got.result;
      } finally {
        // Every body is read or cancelled by now: nothing is left to wait for.
        await agent.destroy().catch(() => undefined);
      }
    },
  };
}

/** Stores the 200's validators with the layer it became, or forgets the URL when it sent none. */
async function remember(memo: HttpMemo, url: string, res: Response, got: Downloaded): Promise<void> {
  const etag = res.headers.get('etag') ?? undefined;
  const lastModified = res.headers.get('last-modified') ?? undefined;
  const diffId = got.result.layers.at(-1)?.diffId;
  if ((etag === undefined && lastModified === undefined) || !diffId) {
    // Validators from an older response must not be sent for content they do not describe.
    await memo.delete(url);
    return;
  }
  await memo.set({ url, diffId, filename: got.filename, digest: got.digest, ...(etag !== undefined ? { etag } : {}), ...(lastModified !== undefined ? { lastModified } : {}) });
}

/** The memo entry when it can stand for this op's result: same file name, and the --checksum if one is given. */
function matching(e: HttpMemoEntry | undefined, op: HttpOp): HttpMemoEntry | undefined {
  if (!e) return undefined;
  if (op.filename !== undefined && e.filename !== op.filename) return undefined;
  if (op.checksum !== undefined && e.digest !== op.checksum) return undefined;
  return e;
}

/** What a download goes through: the step's agent (with its timeouts) and signal. */
interface HttpGet {
  readonly agent: Agent;
  readonly fetch: typeof import('undici').fetch;
  readonly timeouts: HttpTimeouts;
  readonly signal: AbortSignal;
}

/** GET `url` (redirects followed), conditional on `known`'s validators when given. Network and TLS failures are user errors naming the URL. */
async function request(url: string, known: HttpMemoEntry | undefined, http: HttpGet): Promise<Response> {
  const headers: Record<string, string> = {};
  if (known?.etag !== undefined) headers['if-none-match'] = known.etag;
  if (known?.lastModified !== undefined) headers['if-modified-since'] = known.lastModified;
  try {
    return await http.fetch(url, { signal: http.signal, redirect: 'follow', headers, dispatcher: http.agent });
  } catch (e) {
    if (isAbortError(e)) throw e;
    const cert = certificateError(e);
    if (cert) {
      throw new BuildError('HTTP_SOURCE', `failed to download ${url}: TLS certificate of the server is not trusted: ${cert}`, {
        cause: e,
        hint: 'to trust a private certificate authority, point NODE_EXTRA_CA_CERTS at its PEM file when running tsbuild',
      });
    }
    throw new BuildError('HTTP_SOURCE', `failed to download ${url}: ${transferFailure(e, http.timeouts)}`, { cause: e });
  }
}

/** A committed download: the one-layer rootfs, the file's name in it and the sha256 of its bytes. */
interface Downloaded {
  readonly result: RootfsResult;
  readonly filename: string;
  readonly digest: Digest;
}

/** Streams a 200's body into a one-layer rootfs; checks --checksum before committing. */
async function download(worker: Worker, op: HttpOp, res: Response, http: HttpGet, ctx: Ctx): Promise<Downloaded> {
  await mkdir(worker.dirs.tmp, { recursive: true });
  const dir = await mkdtemp(join(worker.dirs.tmp, 'http-'));
  try {
    const filename = downloadName(op);
    const upper = join(dir, 'upper');
    await mkdir(upper, { mode: 0o755 });
    // One plain name in a directory made just now: nothing in it can redirect the write.
    const file = join(upper, filename);
    const hash = new Digester();
    await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), hash.passThrough(), createWriteStream(file, { flags: 'wx', mode: 0o600 }), { signal: ctx.signal }).catch((e: unknown) => {
      // A stall, reset or early end of the body: the step fails naming the URL (the temp dir goes below).
      if (isAbortError(e) || ctx.signal.aborted || e instanceof BuildError) throw e;
      throw new BuildError('HTTP_SOURCE', `failed to download ${op.url}: ${transferFailure(e, http.timeouts)}`, { cause: e });
    });
    const digest = hash.digest();
    if (op.checksum && digest !== op.checksum) {
      throw new BuildError('CHECKSUM_MISMATCH', `digest mismatch for ${op.url}: expected ${op.checksum}, got ${digest}`);
    }
    await chmod(file, 0o600); // the umask must not decide it
    // BuildKit: mtime from Last-Modified, else the Unix epoch; never the download time, so the
    // same bytes always make the same layer (and the steps below keep their cache).
    const lastModified = Date.parse(res.headers.get('last-modified') ?? '');
    const mtime = new Date(Number.isNaN(lastModified) ? 0 : lastModified);
    await utimes(file, mtime, mtime);
    const result = await commitUpperAsLayer(worker, upper, { kind: 'rootfs', layers: [] }, ctx);
    return { result, filename, digest };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The op's file name, which must be one plain path segment. The frontend names every download
 * (BuildKit's naming, `__unnamed__` when the URL has none), so Content-Disposition is never
 * consulted, as in BuildKit when the frontend sets the name.
 */
function downloadName(op: HttpOp): string {
  const name = op.filename ?? '__unnamed__';
  if (name === '' || name === '.' || name === '..' || /[/\\\0]/.test(name)) {
    throw new BuildError('HTTP_SOURCE', `refusing to save ${op.url} as ${JSON.stringify(name)}: not a plain file name`);
  }
  return name;
}

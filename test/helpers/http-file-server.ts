import { readFile } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';

/** One resource the server serves; replace it with `set` to change the content between builds. */
export interface ServedFile {
  readonly body: string | Buffer;
  readonly etag?: string;
  readonly lastModified?: Date;
  /** Answer If-None-Match / If-Modified-Since with 304 when they match (default true); false = a server that ignores them. */
  readonly conditional?: boolean;
  /** Answer every conditional request with 304 carrying this ETag (a misbehaving server). */
  readonly alwaysNotModified?: string;
}

/** What the server saw of one request and what it answered. */
export interface ServedRequest {
  readonly path: string;
  readonly ifNoneMatch?: string;
  readonly ifModifiedSince?: string;
  readonly status: number;
  /** Body bytes sent (0 for a 304). */
  readonly bytes: number;
}

export interface HttpFileServer {
  /** `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`. */
  readonly base: string;
  /** Every request so far, in order. */
  readonly requests: ServedRequest[];
  set(path: string, file: ServedFile): void;
  /** The requests for `path` (query included, as sent). */
  requestsFor(path: string): ServedRequest[];
  close(): Promise<void>;
}

/**
 * A node:http (or, given a certificate, node:https) server on 127.0.0.1 serving files set by
 * the test, with ETag / Last-Modified and the HTTP conditional-GET rules (RFC 9110 §13: an
 * If-None-Match present decides alone; If-Modified-Since only without it). Unknown paths are 404.
 * It logs each request, so tests can tell a revalidation (304, no body) from a download.
 */
export async function startHttpFileServer(opts: { tls?: { certFile: string; keyFile: string } } = {}): Promise<HttpFileServer> {
  const files = new Map<string, ServedFile>();
  const requests: ServedRequest[] = [];
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const path = req.url ?? '/';
    const ifNoneMatch = req.headers['if-none-match'];
    const ifModifiedSince = req.headers['if-modified-since'];
    const log = (status: number, bytes: number) =>
      requests.push({ path, status, bytes, ...(ifNoneMatch !== undefined ? { ifNoneMatch } : {}), ...(ifModifiedSince !== undefined ? { ifModifiedSince } : {}) });
    const f = files.get(path);
    if (!f) {
      log(404, 0);
      res.writeHead(404).end();
      return;
    }
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
    if (f.etag !== undefined) headers.etag = f.etag;
    if (f.lastModified) headers['last-modified'] = f.lastModified.toUTCString();
    if (f.alwaysNotModified !== undefined && (ifNoneMatch !== undefined || ifModifiedSince !== undefined)) {
      log(304, 0);
      res.writeHead(304, { etag: f.alwaysNotModified }).end();
      return;
    }
    if (f.conditional !== false && notModified(f, ifNoneMatch, ifModifiedSince)) {
      log(304, 0);
      res.writeHead(304, headers).end();
      return;
    }
    const body = Buffer.from(f.body);
    log(200, body.length);
    res.writeHead(200, { ...headers, 'content-length': String(body.length) }).end(body);
  };
  const server: Server = opts.tls
    ? createHttpsServer({ cert: await readFile(opts.tls.certFile), key: await readFile(opts.tls.keyFile) }, handle)
    : createHttpServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `${opts.tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    base,
    requests,
    set: (path, file) => void files.set(path, file),
    requestsFor: (path) => requests.filter((r) => r.path === path),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function notModified(f: ServedFile, ifNoneMatch: string | undefined, ifModifiedSince: string | undefined): boolean {
  if (ifNoneMatch !== undefined) return f.etag !== undefined && ifNoneMatch.split(',').some((t) => t.trim() === f.etag || t.trim() === '*');
  if (ifModifiedSince !== undefined && f.lastModified) {
    const since = Date.parse(ifModifiedSince);
    return !Number.isNaN(since) && Math.floor(f.lastModified.getTime() / 1000) <= Math.floor(since / 1000);
  }
  return false;
}

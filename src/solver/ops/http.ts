import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fetch } from 'undici';
import { BuildError, isAbortError } from '../../errors.js';
import type { HttpOp } from '../graph.js';
import type { OpHandler } from '../scheduler.js';
import type { Worker } from '../worker.js';
import { commitUpperAsLayer } from './commit-layer.js';

/**
 * ADD <URL> (BuildKit's source/http): streams the response (redirects followed) into a file in
 * a fresh upperdir under the root's tmp, digesting it on the way, and commits that as a
 * one-layer rootfs holding only the file. Mode 0600 and mtime from Last-Modified, as BuildKit.
 * A --checksum mismatch fails before anything is stored.
 */
export function httpHandler(worker: Worker): OpHandler<HttpOp> {
  return {
    async run(op, _inputs, _vertex, ctx) {
      await mkdir(worker.dirs.tmp, { recursive: true });
      const dir = await mkdtemp(join(worker.dirs.tmp, 'http-'));
      try {
        const res = await fetch(op.url, { signal: ctx.signal, redirect: 'follow' }).catch((e: unknown) => {
          if (isAbortError(e)) throw e;
          const cause = (e as Error & { cause?: Error }).cause?.message ?? (e as Error).message;
          throw new BuildError('HTTP_SOURCE', `failed to download ${op.url}: ${cause}`, { cause: e });
        });
        if (!res.ok || !res.body) {
          await res.body?.cancel().catch(() => undefined);
          throw new BuildError('HTTP_SOURCE', `failed to download ${op.url}: invalid response status ${res.status} ${res.statusText}`.trimEnd());
        }
        const name = op.filename ?? dispositionName(res.headers.get('content-disposition')) ?? 'index';
        const upper = join(dir, 'upper');
        await mkdir(upper, { mode: 0o755 });
        const file = join(upper, name);
        const hash = createHash('sha256');
        const digesting = new Transform({
          transform(chunk: Buffer, _enc, cb) {
            hash.update(chunk);
            cb(null, chunk);
          },
        });
        await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), digesting, createWriteStream(file, { mode: 0o600 }), { signal: ctx.signal });
        const digest = `sha256:${hash.digest('hex')}`;
        if (op.checksum && digest !== op.checksum) {
          throw new BuildError('CHECKSUM_MISMATCH', `digest mismatch for ${op.url}: expected ${op.checksum}, got ${digest}`);
        }
        await chmod(file, 0o600); // the umask must not decide it
        const lastModified = Date.parse(res.headers.get('last-modified') ?? '');
        if (!Number.isNaN(lastModified)) await utimes(file, new Date(lastModified), new Date(lastModified));
        return await commitUpperAsLayer(worker, upper, { kind: 'rootfs', layers: [] }, ctx);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}

/** `filename` of a Content-Disposition header, kept to one plain path segment; undefined when absent or unsafe. */
function dispositionName(header: string | null): string | undefined {
  if (!header) return undefined;
  const m = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(header);
  if (!m) return undefined;
  let name: string;
  try {
    name = decodeURIComponent(m[1]!.trim());
  } catch {
    name = m[1]!.trim();
  }
  return name === '' || name === '.' || name === '..' || name.includes('/') ? undefined : name;
}

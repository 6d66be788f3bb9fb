import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Ctx } from '../ctx.js';
import type { Digest } from '../oci/digest.js';
import { readErrorBody } from './bounded-body.js';
import { errorForStatus, RegistryError } from './registry-error.js';
import type { Repository } from './repository.js';
import { header, isNetworkError } from './transport.js';

export interface UploadOptions {
  /** Bytes per PATCH. */
  readonly chunkSize: number;
  /** How often a dropped upload is resumed or restarted before giving up. */
  readonly maxRestarts: number;
}

export const DEFAULT_UPLOAD: UploadOptions = { chunkSize: 16 * 1024 * 1024, maxRestarts: 5 };

/** Statuses with which a registry says it does not take chunked (PATCH) uploads. */
const NO_CHUNKS = new Set([400, 405, 416, 501]);

/**
 * Uploads one blob: PATCH chunks with Content-Range, then PUT `?digest=`. After a dropped
 * connection or a 5xx it asks the registry how much arrived (GET on the upload URL, `Range:
 * 0-N`) and resumes there; when the registry has lost the session it restarts with a new one.
 * A registry that refuses the first chunk gets the whole blob in one PUT instead.
 * `open(start, end)` returns a fresh stream of bytes start..end (inclusive) of the blob.
 */
export async function uploadBlob(
  repo: Repository,
  blob: { digest: Digest; size: number },
  open: (start: number, end: number) => Readable,
  location: string | undefined,
  opts: UploadOptions,
  ctx: Ctx,
): Promise<void> {
  const { signal } = ctx;
  const where = { repository: repo.path, what: `push blob ${blob.digest}` };
  const scopes = [`repository:${repo.path}:pull,push`];
  let url = location ?? (await startPlain(repo, signal));
  let offset = 0;
  let chunked = true;
  for (let restarts = 0; ; ) {
    try {
      while (chunked && offset < blob.size) {
        const end = Math.min(blob.size, offset + opts.chunkSize) - 1;
        const start = offset;
        const res = await repo.host.request(
          {
            method: 'PATCH',
            url,
            headers: { 'content-type': 'application/octet-stream', 'content-range': `${start}-${end}`, 'content-length': String(end - start + 1) },
            body: () => open(start, end),
          },
          scopes,
          signal,
          where,
          { retry: false },
        );
        const text = await readErrorBody(res.body);
        if (res.status === 202) {
          url = repo.resolveLocation(res);
          offset = end + 1;
          ctx.events.emit({ type: 'progress', id: `push ${blob.digest}`, current: offset, total: blob.size, at: Date.now() });
          continue;
        }
        if (start === 0 && NO_CHUNKS.has(res.status)) {
          chunked = false;
          break;
        }
        throw errorForStatus(res.status, text, { registry: repo.host.registry, ...where });
      }
      const sep = url.includes('?') ? '&' : '?';
      const whole = !chunked;
      const res = await repo.host.request(
        {
          method: 'PUT',
          url: `${url}${sep}digest=${encodeURIComponent(blob.digest)}`,
          headers: whole ? { 'content-type': 'application/octet-stream', 'content-length': String(blob.size) } : { 'content-length': '0' },
          ...(whole ? { body: () => open(0, blob.size - 1) } : {}),
        },
        scopes,
        signal,
        where,
        { retry: false },
      );
      const text = await readErrorBody(res.body);
      if (res.status !== 201 && res.status !== 204) throw errorForStatus(res.status, text, { registry: repo.host.registry, ...where });
      return;
    } catch (e) {
      signal.throwIfAborted();
      const temporary = isNetworkError(e) || (e instanceof RegistryError && e.temporary);
      if (!temporary || ++restarts > opts.maxRestarts) throw e;
      await sleep(Math.min(5000, 100 * 2 ** restarts), undefined, { signal });
      const resumed = chunked ? await uploadedBytes(repo, url, signal) : undefined;
      if (resumed) {
        offset = resumed.offset;
        url = resumed.location;
      } else {
        url = await startPlain(repo, signal);
        offset = 0;
      }
    }
  }
}

async function startPlain(repo: Repository, signal: AbortSignal): Promise<string> {
  const r = await repo.startUpload(signal);
  if (r.mounted) throw new Error('unreachable: plain upload reported a mount');
  return r.location;
}

/**
 * How many bytes the registry holds for an upload session, or undefined when the session is
 * gone or ambiguous (`Range: 0-0` means 0 or 1 bytes), so the caller starts over.
 */
async function uploadedBytes(repo: Repository, url: string, signal: AbortSignal): Promise<{ offset: number; location: string } | undefined> {
  try {
    const res = await repo.host.request({ method: 'GET', url }, [`repository:${repo.path}:pull,push`], signal, { repository: repo.path, what: 'upload status' }, { retry: false });
    await res.body.dump().catch(() => undefined);
    if (res.status !== 204 && res.status !== 202) return undefined;
    const m = /^(?:bytes=)?0-(\d+)$/.exec(header(res.headers, 'range') ?? '');
    if (!m || m[1] === '0') return undefined;
    // The session token in the Location records the offset; continue with the new one.
    return { offset: Number(m[1]) + 1, location: header(res.headers, 'location') ? repo.resolveLocation(res) : url };
  } catch (e) {
    if (isNetworkError(e) || (e instanceof RegistryError && e.temporary)) return undefined;
    throw e;
  }
}

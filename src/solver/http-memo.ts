import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { digestHex, isDigest, sha256, type Digest } from '../oci/digest.js';
import { writeFileAtomic } from '../oci/image-layout.js';
import type { RootDirs } from '../root-dirs.js';
import { sweepMemoDir } from './memo-sweep.js';

const VERSION = 1;

/** What an http source produced for one URL, with the validators to ask the server whether it still holds. */
export interface HttpMemoEntry {
  readonly url: string;
  /** The response's ETag, verbatim (weak `W/"…"` included): sent back as If-None-Match. */
  readonly etag?: string;
  /** The response's Last-Modified, verbatim: sent back as If-Modified-Since. */
  readonly lastModified?: string;
  /** The one-layer rootfs the download became (the file, its mode and its mtime). */
  readonly diffId: Digest;
  /** The file's name in that layer. */
  readonly filename: string;
  /** sha256 of the file's bytes, so a --checksum can be checked without reading the layer. */
  readonly digest: Digest;
}

/** Where the memo lives under a root: `<root>/cache/http/`. One place, for the handler and prune. */
export function httpMemoDir(dirs: RootDirs): string {
  return join(dirs.cache, 'http');
}

/**
 * Per-URL memory of the http source (BuildKit's http cache metadata): the ETag and
 * Last-Modified of the last 200 and the layer it became, one file per URL
 * (`<sha256 of the URL hex>.json`), written by rename. An entry is only trusted while its layer
 * is committed (`present`); a damaged or foreign one is ignored (the URL is downloaded as if new).
 * Prune drops entries whose layer is gone (`sweepHttpMemo`).
 */
export class HttpMemo {
  readonly #dir: string;
  readonly #present: (diffId: Digest) => Promise<boolean>;

  constructor(dir: string, present: (diffId: Digest) => Promise<boolean>) {
    this.#dir = dir;
    this.#present = present;
  }

  /** The entry for `url` whose layer is still present; undefined when there is none, it is damaged, or its layer is gone. */
  async get(url: string): Promise<HttpMemoEntry | undefined> {
    const e = await readEntry(this.#path(url));
    if (!e || e.url !== url || !(await this.#present(e.diffId))) return undefined;
    return e;
  }

  /** Replaces the entry for `entry.url`. */
  async set(entry: HttpMemoEntry): Promise<void> {
    await mkdir(this.#dir, { recursive: true });
    const data = { version: VERSION, ...entry };
    await writeFileAtomic(this.#path(entry.url), JSON.stringify(data));
  }

  /** Drops the entry for `url` (a server that stopped sending validators must not be asked with stale ones). */
  async delete(url: string): Promise<void> {
    await rm(this.#path(url), { force: true });
  }

  #path(url: string): string {
    return join(this.#dir, `${digestHex(sha256(url))}.json`);
  }
}

/** A well-formed entry of this version at `path`, else undefined (missing, unreadable, damaged, foreign). */
async function readEntry(path: string): Promise<HttpMemoEntry | undefined> {
  let d: Record<string, unknown>;
  try {
    d = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (typeof d !== 'object' || d === null || d.version !== VERSION) return undefined;
  const { url, etag, lastModified, diffId, filename, digest } = d;
  if (typeof url !== 'string' || typeof filename !== 'string' || typeof diffId !== 'string' || !isDigest(diffId) || typeof digest !== 'string' || !isDigest(digest)) return undefined;
  if ((etag !== undefined && typeof etag !== 'string') || (lastModified !== undefined && typeof lastModified !== 'string')) return undefined;
  if (etag === undefined && lastModified === undefined) return undefined;
  return { url, diffId, filename, digest, ...(etag !== undefined ? { etag } : {}), ...(lastModified !== undefined ? { lastModified } : {}) };
}

/** Prune's sweep: entries whose layer is gone or that can't be read, and stray temp files. @returns how many entries went. */
export function sweepHttpMemo(dir: string, present: (diffId: Digest) => boolean): Promise<number> {
  return sweepMemoDir(dir, async (path) => {
    const e = await readEntry(path);
    return e && [e.diffId];
  }, present);
}

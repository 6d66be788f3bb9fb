import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { link, open, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { BuildError } from '../errors.js';
import { ContentStore } from './content-store.js';
import { isDigest } from './digest.js';
import type { Descriptor, OciImageIndex, Platform } from './image.js';
import { withFileLock } from './index-lock.js';
import { MediaType, REF_NAME_ANNOTATION } from './media-types.js';

/** A descriptor as it appears in an index: may carry the platform it was built for. */
export type IndexDescriptor = Descriptor & { platform?: Platform & { 'os.version'?: string; 'os.features'?: string[] } };

/** index.json with checked digests. */
export interface LayoutIndex extends Omit<OciImageIndex, 'manifests'> {
  manifests: IndexDescriptor[];
}

export const OCI_LAYOUT_FILE = 'oci-layout';
export const OCI_LAYOUT_CONTENT = '{"imageLayoutVersion":"1.0.0"}';

/**
 * An OCI image layout directory (`oci-layout`, `index.json`, `blobs/sha256/`), used as the local
 * image store and as an export format. Tags are `org.opencontainers.image.ref.name` annotations
 * on index.json entries; this class stores the name exactly as given (the local store passes
 * normalized names such as `docker.io/library/hello:latest`, exported layouts just the tag).
 *
 * index.json changes are read-modify-write under an exclusive lock file shared by processes,
 * and each new index.json is written to a temp file, fsynced and renamed into place, so
 * concurrent tsbuild processes never lose each other's tags and readers never see a torn file.
 */
export class ImageLayout {
  readonly dir: string;
  readonly blobs: ContentStore;

  private constructor(dir: string, blobs: ContentStore) {
    this.dir = dir;
    this.blobs = blobs;
  }

  /**
   * Opens the layout at `dir`. With `create`, makes whatever is missing (directory, `oci-layout`,
   * an empty `index.json`, `blobs/sha256`); without it, a missing or foreign directory is a
   * BuildError('STORE_CORRUPT'). `tmpDir` (same filesystem) defaults to `<dir>/.tmp`.
   */
  static async open(dir: string, opts: { create: boolean; tmpDir?: string }): Promise<ImageLayout> {
    const tmpDir = opts.tmpDir ?? join(dir, '.tmp');
    const layoutFile = join(dir, OCI_LAYOUT_FILE);
    let version: string | undefined;
    try {
      // Opening the layout reads and checks on this thread: as thread-pool round trips, one after
      // another, these calls were a millisecond of every build's start.
      version = (JSON.parse(readFileSync(layoutFile, 'utf8')) as { imageLayoutVersion?: string }).imageLayoutVersion;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') throw new BuildError('STORE_CORRUPT', `${layoutFile} is not valid JSON`, { cause: e });
      if (!opts.create) throw new BuildError('STORE_CORRUPT', `${dir} is not an OCI image layout (no ${OCI_LAYOUT_FILE} file)`, { cause: e });
    }
    if (version !== undefined && version !== '1.0.0') {
      throw new BuildError('STORE_CORRUPT', `${dir}: unsupported imageLayoutVersion ${JSON.stringify(version)}`);
    }
    if (opts.create) {
      mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
      mkdirSync(tmpDir, { recursive: true });
      if (version === undefined) await writeIfMissing(layoutFile, OCI_LAYOUT_CONTENT);
      await writeIfMissing(join(dir, 'index.json'), JSON.stringify(emptyIndex()));
    }
    return new ImageLayout(dir, new ContentStore(dir, tmpDir));
  }

  get indexPath(): string {
    return join(this.dir, 'index.json');
  }

  /** The current index.json (a fresh read each call). */
  async readIndex(): Promise<LayoutIndex> {
    let text: string;
    try {
      text = readFileSync(this.indexPath, 'utf8'); // on this thread: read by every tag lookup and update
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return emptyIndex();
      throw e;
    }
    let idx: LayoutIndex;
    try {
      idx = JSON.parse(text) as LayoutIndex;
    } catch (e) {
      throw new BuildError('STORE_CORRUPT', `${this.indexPath} is not valid JSON`, { cause: e });
    }
    if (idx.schemaVersion !== 2 || !Array.isArray(idx.manifests)) throw new BuildError('STORE_CORRUPT', `${this.indexPath} is not an OCI image index`);
    for (const m of idx.manifests) {
      if (!isDigest(m.digest)) throw new BuildError('STORE_CORRUPT', `${this.indexPath} has an entry with invalid digest ${JSON.stringify(m.digest)}`);
    }
    return idx;
  }

  /** The descriptor tagged `name`, or undefined. */
  async resolve(name: string): Promise<IndexDescriptor | undefined> {
    const idx = await this.readIndex();
    return idx.manifests.find((m) => m.annotations?.[REF_NAME_ANNOTATION] === name);
  }

  /**
   * Points `name` at `desc` (its blob should already be in `blobs`), replacing any entry that
   * had that name. Other annotations of `desc` are kept.
   */
  async tag(name: string, desc: IndexDescriptor): Promise<void> {
    if (name === '') throw new BuildError('USAGE', 'tag name is empty');
    await this.update((idx) => {
      const rest = idx.manifests.filter((m) => m.annotations?.[REF_NAME_ANNOTATION] !== name);
      const entry: IndexDescriptor = { ...desc, annotations: { ...desc.annotations, [REF_NAME_ANNOTATION]: name } };
      return { ...idx, manifests: [...rest, entry] };
    });
  }

  /** Removes the entry named `name`; returns whether there was one. Blobs stay (garbage collection removes them). */
  async untag(name: string): Promise<boolean> {
    let found = false;
    await this.update((idx) => {
      const rest = idx.manifests.filter((m) => m.annotations?.[REF_NAME_ANNOTATION] !== name);
      found = rest.length !== idx.manifests.length;
      return { ...idx, manifests: rest };
    });
    return found;
  }

  /** Every named entry, in index order. */
  async list(): Promise<{ name: string; descriptor: IndexDescriptor }[]> {
    const idx = await this.readIndex();
    const out: { name: string; descriptor: IndexDescriptor }[] = [];
    for (const m of idx.manifests) {
      const name = m.annotations?.[REF_NAME_ANNOTATION];
      if (name !== undefined) out.push({ name, descriptor: m });
    }
    return out;
  }

  /**
   * Read-modify-write of index.json under the layout's lock. `fn` must be pure (no I/O): it may
   * run while other processes wait.
   */
  async update(fn: (idx: LayoutIndex) => LayoutIndex): Promise<void> {
    await withFileLock(`${this.indexPath}.lock`, async () => {
      const current = await this.readIndex();
      const before = JSON.stringify(current);
      const next = JSON.stringify(fn(current));
      // Re-tagging what a name already points at (every no-op rebuild) changes nothing: no write, no fsync.
      if (next !== before) await writeFileAtomic(this.indexPath, next);
    });
  }
}

function emptyIndex(): LayoutIndex {
  return { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] };
}

/** Bytes up to which a file written without fsync is written on the calling thread. */
const SMALL_FILE = 64 * 1024;

/**
 * Writes `content` to `path` through a temp file in the same directory: fsync, then rename.
 * `durable: false` leaves out the fsync, for files a reader checks and can do without (a power
 * loss may leave them empty): a reader never sees a partly written one either way.
 */
export async function writeFileAtomic(path: string, content: string | Uint8Array | Iterable<string>, opts: { durable?: boolean } = {}): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  if (opts.durable === false && typeof content === 'string' && content.length <= SMALL_FILE) {
    // A small file without fsync (a cache record, a step's key) on this thread: its open, write,
    // close and rename as thread-pool round trips cost more than the calls themselves.
    try {
      writeFileSync(tmp, content, { flag: 'wx', mode: 0o644 });
      renameSync(tmp, path);
    } catch (e) {
      rmSync(tmp, { force: true });
      throw e;
    }
    return;
  }
  const fh = await open(tmp, 'wx', 0o644);
  try {
    // An iterable is written piece by piece: a large document never exists as one string.
    if (typeof content === 'string' || content instanceof Uint8Array) await fh.writeFile(content);
    else for (const piece of content) await fh.writeFile(piece); // from the current position, whole
    if (opts.durable ?? true) await fh.sync();
  } catch (e) {
    await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}

/** Creates `path` with `content` (synced) unless it exists; safe against a concurrent creator, whose file wins. */
export async function writeIfMissing(path: string, content: string): Promise<void> {
  // The usual case, a store that exists: no temp file, fsync and link to find that out.
  if (existsSync(path)) return;
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  await writeFileAtomic(tmp, content);
  try {
    // link() refuses to replace, so a concurrent creator's file (maybe with tags already) wins.
    await link(tmp, path).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'EEXIST') throw e;
    });
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}

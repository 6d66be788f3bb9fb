import { randomBytes, randomInt } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { readdir, rename, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BuildError } from '../errors.js';
import { digestHex, type Digest } from '../oci/digest.js';
import type { Descriptor } from '../oci/image.js';
import { opaqueXattr, type OverlayXattrPrefix } from '../oci/layer/overlay-xattrs.js';
import type { RootDirs } from '../root-dirs.js';
import { readHostFile } from './host-file.js';
import { currentBootId, readRecoveredTimes, recoverUnsyncedLayers, UnsyncedLayers } from './unsynced-layers.js';

const SHORT_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const SHORT_LEN = 26;
const FORMAT_FILE = 'overlay-xattrs';

/**
 * Unpacked layers in overlay format, as docker's overlay2 keeps them:
 *
 *     layers/<diffid hex>/diff        the layer's files (whiteouts as 0:0 char devices)
 *     layers/<diffid hex>/link        its short id (26 chars of [A-Z0-9])
 *     layers/<diffid hex>/blob.json   descriptor of the compressed blob, if known
 *     layers/<diffid hex>/committed   present once the layer is complete
 *     layers/.unsynced                layers since when may not be on disk (unsynced-layers.ts)
 *     l/<short id> -> ../layers/<diffid hex>/diff
 *
 * The short links keep overlay's `lowerdir=` option under the page size with many layers.
 * A layer is published by one rename of a fully written staging directory, so readers and
 * other tsbuild processes sharing the root never see half a layer.
 */
export class LayerStore {
  readonly #dirs: RootDirs;
  /** blob.json contents read so far: written once, before the layer dir is published, never changed. */
  readonly #blobs = new Map<Digest, Descriptor>();
  /** Where this store's layer dirs keep overlay's opaque markers; see {@link LayerStore.open}. */
  readonly overlayXattrPrefix: OverlayXattrPrefix;
  readonly #unsynced: UnsyncedLayers;
  /** Creation times of layers a crash recovery removed, read on the first commit. */
  #recoveredTimes?: Map<string, number>;

  constructor(dirs: RootDirs, overlayXattrPrefix: OverlayXattrPrefix = 'user.overlay.', bootId: string = currentBootId()) {
    this.#dirs = dirs;
    this.overlayXattrPrefix = overlayXattrPrefix;
    this.#unsynced = new UnsyncedLayers(dirs.layers, bootId);
  }

  /**
   * Opens the store under `dirs`, reading which overlay xattr namespace its layers use from
   * `<root>/overlay-xattrs`. New stores use `user.overlay.` (overlay's `userxattr`): those xattrs
   * work as real root, in a user namespace and without CAP_SYS_ADMIN alike, so one store serves
   * every isolation mode. A store from before that file existed holds `trusted.overlay.` markers.
   */
  static async open(dirs: RootDirs, opts: { bootId?: string } = {}): Promise<LayerStore> {
    const boot = opts.bootId ?? currentBootId();
    // Before any layer is used: a crash may have left layer dirs of an earlier boot incomplete.
    await recoverUnsyncedLayers(dirs.layers, dirs.root, (hex) => removeLayerDir(dirs, hex), boot);
    const file = join(dirs.root, FORMAT_FILE);
    let text: string | undefined;
    try {
      text = readFileSync(file, 'utf8'); // on this thread: read at every build's start
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    if (text !== undefined) {
      const prefix = text.trim();
      if (prefix !== 'user.overlay.' && prefix !== 'trusted.overlay.') throw new BuildError('STORE_CORRUPT', `${file} says ${JSON.stringify(prefix)}; expected user.overlay. or trusted.overlay.`);
      return new LayerStore(dirs, prefix, boot);
    }
    const legacy = (await readdir(dirs.layers).catch(() => [] as string[])).some((n) => !n.startsWith('.'));
    const prefix: OverlayXattrPrefix = legacy ? 'trusted.overlay.' : 'user.overlay.';
    // Written whole and renamed: processes opening a new store at once all write the same answer.
    const tmp = `${file}.${randomBytes(6).toString('hex')}`;
    await writeFile(tmp, `${prefix}\n`);
    await rename(tmp, file);
    return new LayerStore(dirs, prefix, boot);
  }

  /** The xattr marking an opaque directory in this store's layer dirs and upperdirs. */
  get opaqueXattr(): string {
    return opaqueXattr(this.overlayXattrPrefix);
  }

  /** Absolute path of the layer's `diff` directory (whether or not it exists yet). */
  dir(diffId: Digest): string {
    return join(this.#layerDir(diffId), 'diff');
  }

  /** True when the layer is committed (complete). */
  async has(diffId: Digest): Promise<boolean> {
    // One syscall on this thread beats a thread-pool round trip: asked for every cached step.
    return existsSync(join(this.#layerDir(diffId), 'committed'));
  }

  /**
   * When the layer was first committed to this store (its `committed` marker's mtime): the time
   * a rebuild that finds it cached records for its step, so a cached rebuild makes the same image.
   */
  async createdAt(diffId: Digest): Promise<Date> {
    try {
      // On this thread, as has(): asked for every layer of the image a build assembles, one
      // after another, and a thread-pool round trip each was ~7 ms of a 120-layer no-op.
      return statSync(join(this.#layerDir(diffId), 'committed')).mtime;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new BuildError('STORE_CORRUPT', `layer ${diffId} is not in the layer store`);
      throw e;
    }
  }

  /** Records when a layer imported from a cache was first made, in place of its import time. */
  async setCreatedAt(diffId: Digest, at: Date): Promise<void> {
    await utimes(join(this.#layerDir(diffId), 'committed'), at, at);
  }

  /** The short link of a committed layer, relative to the root: `l/<26 chars>`. */
  async shortLink(diffId: Digest): Promise<string> {
    if (!(await this.has(diffId))) throw new BuildError('STORE_CORRUPT', `layer ${diffId} is not in the layer store`);
    // On this thread, like has(): a mount reads one per layer below it, in turn.
    const id = readFileSync(join(this.#layerDir(diffId), 'link'), 'utf8').trim();
    return `l/${id}`;
  }

  /** The compressed blob's descriptor recorded at commit, so export need not recompress. */
  async blob(diffId: Digest): Promise<Descriptor | undefined> {
    // A build asks for each of its layers twice (its cache hit, then the image it assembles).
    const known = this.#blobs.get(diffId);
    if (known) return known;
    try {
      const desc = JSON.parse(readFileSync(join(this.#layerDir(diffId), 'blob.json'), 'utf8')) as Descriptor;
      this.#blobs.set(diffId, desc);
      return desc;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  /**
   * Moves the populated directory `srcDir` into the store as layer `diffId` (by rename: `srcDir`
   * must be on the root's filesystem, e.g. an upperdir or a dir under `dirs.tmp`). `srcDir` is
   * consumed either way: if another process committed the same layer first, ours is removed and
   * the call succeeds. The caller vouches that `diffId` is the digest of the layer tar.
   */
  async commit(srcDir: string, diffId: Digest, info: { blob?: Descriptor }): Promise<void> {
    if (await this.has(diffId)) {
      await rm(srcDir, { recursive: true, force: true });
      return;
    }
    const hex = digestHex(diffId);
    const staging = join(this.#dirs.layers, `.tmp-${hex.slice(0, 12)}-${randomBytes(6).toString('hex')}`);
    const short = shortId();
    const link = join(this.#dirs.links, short);
    let published = false;
    // The publishing below is a handful of metadata calls on the store's own dirs, made on this
    // thread: as nine thread-pool round trips one after the other they were ~1 ms of every step.
    mkdirSync(staging, { recursive: true });
    mkdirSync(this.#dirs.links, { recursive: true });
    try {
      try {
        renameSync(srcDir, join(staging, 'diff'));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EXDEV') {
          throw new BuildError('INTERNAL', `layer source ${srcDir} is not on the filesystem of ${this.#dirs.root}`, { cause: e });
        }
        throw e;
      }
      writeFileSync(join(staging, 'link'), short);
      if (info.blob) writeFileSync(join(staging, 'blob.json'), JSON.stringify(info.blob));
      // The link dangles until the rename below publishes the layer dir it points into.
      symlinkSync(`../layers/${hex}/diff`, link);
      writeFileSync(join(staging, 'committed'), '');
      // Unpacked again after a crash: the layer keeps the time it was first made.
      const was = (this.#recoveredTimes ??= readRecoveredTimes(this.#dirs.layers)).get(hex);
      if (was !== undefined) utimesSync(join(staging, 'committed'), new Date(was), new Date(was));
      // Nothing of the layer is synced: the marker covers it (see unsynced-layers.ts).
      await this.#unsynced.ensure();
      try {
        renameSync(staging, this.#layerDir(diffId));
        published = true;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
        // Lost the race: someone else published the same layer. Theirs is complete by construction.
        if (!(await this.has(diffId))) {
          throw new BuildError('STORE_CORRUPT', `layer directory ${this.#layerDir(diffId)} exists but is incomplete`, { cause: e });
        }
      }
    } finally {
      if (!published) {
        await rm(link, { force: true });
        await rm(staging, { recursive: true, force: true });
        await rm(srcDir, { recursive: true, force: true });
      }
    }
  }

  /** Removes a committed layer (see removeLayerDir). */
  remove(diffId: Digest): Promise<void> {
    return removeLayerDir(this.#dirs, digestHex(diffId));
  }

  #layerDir(diffId: Digest): string {
    return join(this.#dirs.layers, digestHex(diffId));
  }
}

/**
 * Unpublishes layer dir `hex` by one rename (no reader ever sees it half-deleted), then deletes
 * it and its short link: gc's removal, and a crash recovery's.
 */
async function removeLayerDir(dirs: RootDirs, hex: string): Promise<void> {
  const dir = join(dirs.layers, hex);
  const short = readHostFile(join(dir, 'link'))?.trim();
  const doomed = join(dirs.layers, `.tmp-del-${hex.slice(0, 12)}-${process.pid}-${randomBytes(4).toString('hex')}`);
  await rename(dir, doomed);
  if (short && /^[A-Z0-9]+$/.test(short)) await rm(join(dirs.links, short), { force: true });
  await rm(doomed, { recursive: true, force: true });
}

function shortId(): string {
  let s = '';
  for (let i = 0; i < SHORT_LEN; i++) s += SHORT_ALPHABET[randomInt(SHORT_ALPHABET.length)];
  return s;
}

import { closeSync, futimesSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../oci/image-layout.js';
import { digestFromHex, digestHex, isDigest, type Digest } from '../oci/digest.js';
import type { RootfsResult } from './graph.js';

/** One cache entry on disk: key → the layers of the result. */
export interface CacheRecord {
  readonly key: Digest;
  readonly result: RootfsResult;
  /** When the result was built (ms since epoch). */
  readonly created: number;
}

/** A listed record with when it was last used (the record file's mtime). */
export interface CacheEntryInfo extends CacheRecord {
  readonly lastUsed: number;
}

/** Is a layer usable: committed in the layer store with its compressed blob in the content store. */
export type LayerCheck = (diffId: Digest) => boolean | Promise<boolean>;

/**
 * The persistent key → result index under `<root>/cache/records`, one small JSON file per key,
 * published by rename (a reader sees a whole record or none; concurrent writers of the same key
 * write equivalent records and the last rename wins). Layers themselves live in the LayerStore.
 * A record is only trusted after `layerOk` confirms every layer it names; a record that fails
 * that check (pruned or lost layers, a damaged file) is a miss and is deleted on the spot, so a
 * cache entry never hands out missing content.
 */
export class CacheStore {
  readonly #dir: string;
  readonly #layerOk: LayerCheck;

  constructor(dir: string, layerOk: LayerCheck) {
    this.#dir = dir;
    this.#layerOk = layerOk;
  }

  async lookup(key: Digest): Promise<RootfsResult | undefined> {
    const file = this.#path(key);
    let rec: CacheRecord | undefined;
    let fd: number | undefined;
    try {
      // Read in one go on this thread: a record is a few hundred bytes, and readFile's open,
      // fstat, read and close are four thread-pool round trips on the path of every cached step.
      fd = openSync(file, 'r');
      rec = parseRecord(readFileSync(fd, 'utf8'), key);
      // The mtime is the record's last use, for least-recently-used pruning: set through the
      // open fd, a syscall, where an async utimes per hit cost a 200-step no-op ~4 ms of this thread.
      if (rec && (await this.#allPresent(rec.result))) {
        const now = new Date();
        futimesSync(fd, now, now);
        return rec.result;
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
    await rm(file, { force: true });
    return undefined;
  }

  async record(key: Digest, result: RootfsResult, created = Date.now()): Promise<void> {
    mkdirSync(this.#dir, { recursive: true });
    const rec: CacheRecord = { key, result: { kind: 'rootfs', layers: result.layers.map((l) => ({ diffId: l.diffId })) }, created };
    // Not fsynced: each step's path would wait for a journal commit (on ext4 one that may flush
    // other writers' data too). A record a power loss leaves empty or torn is a miss that lookup
    // deletes (parseRecord refuses it), one naming a lost layer too (#allPresent).
    await writeFileAtomic(this.#path(key), JSON.stringify(rec), { durable: false });
  }

  async remove(key: Digest): Promise<void> {
    await rm(this.#path(key), { force: true });
  }

  /** Every readable record; unreadable files are skipped (lookup removes them). */
  async list(): Promise<CacheEntryInfo[]> {
    const names = await readdir(this.#dir).catch(() => [] as string[]);
    const out: CacheEntryInfo[] = [];
    for (const name of names) {
      if (!/^[a-f0-9]{64}\.json$/.test(name)) continue;
      const key = digestFromHex(name.slice(0, 64));
      try {
        const file = join(this.#dir, name);
        const rec = parseRecord(await readFile(file, 'utf8'), key);
        if (rec) out.push({ ...rec, lastUsed: (await stat(file)).mtimeMs });
      } catch {
        // Vanished or damaged meanwhile.
      }
    }
    return out;
  }

  /**
   * A record names every layer of its rootfs, the base's too: a step deep in a 120-layer image
   * checks 120, so a check the caller answers from memory (a boolean, not a promise) is not
   * awaited: an await per layer per step was most of a deep no-op's per-step time.
   */
  async #allPresent(result: RootfsResult): Promise<boolean> {
    for (const l of result.layers) {
      const ok = this.#layerOk(l.diffId);
      if (ok === true) continue;
      if (ok === false || !(await ok)) return false;
    }
    return true;
  }

  #path(key: Digest): string {
    return join(this.#dir, `${digestHex(key)}.json`);
  }
}

function parseRecord(text: string, key: Digest): CacheRecord | undefined {
  try {
    const r = JSON.parse(text) as CacheRecord;
    if (r?.key !== key || r.result?.kind !== 'rootfs' || !Array.isArray(r.result.layers)) return undefined;
    if (!r.result.layers.every((l) => typeof l?.diffId === 'string' && isDigest(l.diffId))) return undefined;
    return r;
  } catch {
    return undefined;
  }
}

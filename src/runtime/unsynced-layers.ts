import { closeSync, fsyncSync, openSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { withFileLock } from '../oci/index-lock.js';
import { writeIfMissing } from '../oci/image-layout.js';
import { syncfs } from '../oci/native-fs.js';
import { readHostFile } from './host-file.js';

/**
 * Layer directories are committed without being synced. Syncing them (one syncfs when a build's
 * steps were done) made a build wait for everything dirty on the root's filesystem: its own
 * upperdirs (a 518 MB RUN layer, a second time after its blob) and whatever other processes had
 * written. Only a crash of the kernel or the machine loses written data that was not synced, and
 * that always ends the boot; so a layer dir made during the running boot is as good as synced for
 * every process of that boot.
 *
 * The marker `layers/.unsynced` says "layer dirs committed since <time> during boot <id> may not be
 * on disk". It is made durable before the first layer of a boot is published, once per boot. A
 * store opened in a later boot (LayerStore.open) finds the marker of another boot and removes every
 * layer dir committed since then (by the ctime of its `committed` file, which utimes cannot set
 * back), then the marker. Nothing else is lost: a layer's blob stays fsynced (content-store.ts), an
 * image's layers are unpacked again from its blobs, and a cache record whose layer is gone is used
 * through that layer's uncompressed blob (run-build.ts) or runs again. Layers unpacked from pulled
 * blobs, which were never synced at all before, are covered the same way.
 */
const MARKER = '.unsynced';
const LOCK = '.unsynced.lock';
/**
 * diffID hex → when each removed layer was first committed: unpacked again, a layer gets its time
 * back (LayerStore.commit), so image histories, and with them image IDs, stay what they were.
 */
const RECOVERED_TIMES = '.recovered-times.json';
/**
 * Taken off the marker's time: a clock stepped back (NTP) while the boot ran must not put a later
 * layer before the marker. Removing a few more layers than needed only costs unpacking them again.
 */
const CLOCK_MARGIN_MS = 60 * 60_000;

/** This boot's id (/proc/sys/kernel/random/boot_id): it changes with every boot, and only then. */
export function currentBootId(): string {
  return readHostFile('/proc/sys/kernel/random/boot_id')?.trim() || 'unknown';
}

interface Marker {
  readonly boot: string;
  /** Epoch ms: layer dirs committed at or after this may be incomplete after a crash of boot `boot`. */
  readonly since: number;
}

/** The marker of `layersDir`; undefined when there is none. One written by a torn write counts from the epoch. */
function readMarker(layersDir: string): Marker | undefined {
  let text: string;
  try {
    text = readFileSync(join(layersDir, MARKER), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  const m = /^(\S+) (\d+)\n$/.exec(text);
  return m ? { boot: m[1]!, since: Number(m[2]) } : { boot: '', since: 0 };
}

/**
 * One per LayerStore: `ensure()` before a layer dir is published makes sure the marker of this boot
 * is on disk (a file read the first time, nothing after).
 */
export class UnsyncedLayers {
  readonly #layersDir: string;
  readonly #boot: string;
  #marked = false;

  constructor(layersDir: string, boot: string = currentBootId()) {
    this.#layersDir = layersDir;
    this.#boot = boot;
  }

  async ensure(): Promise<void> {
    if (this.#marked) return;
    const found = readMarker(this.#layersDir);
    if (found === undefined) await this.#create();
    else if (found.boot !== this.#boot) {
      // open() recovers before anything is committed; a store made without it must not bury
      // another boot's marker under its own.
      throw new Error(`${join(this.#layersDir, MARKER)} is from another boot: the layer store was not opened with LayerStore.open`);
    }
    this.#marked = true;
  }

  /**
   * Created whole and synced, only where none is (the first process of a boot to create it wins,
   * and the others keep its earlier time, which covers their layers too), then the directory
   * entry synced: the marker must be on disk before any layer it covers.
   */
  async #create(): Promise<void> {
    await writeIfMissing(join(this.#layersDir, MARKER), `${this.#boot} ${Math.max(0, Date.now() - CLOCK_MARGIN_MS)}\n`);
    const dir = openSync(this.#layersDir, 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
  }
}

/**
 * After a boot other than the marker's: removes the layer dirs committed since the marker, then
 * the marker, under a lock (the first process of the boot does it; the others wait for it before
 * they touch a layer). The removals are synced before the marker goes. Returns how many went.
 */
export async function recoverUnsyncedLayers(layersDir: string, root: string, remove: (hex: string) => Promise<void>, boot: string = currentBootId()): Promise<number> {
  const found = readMarker(layersDir);
  if (found === undefined || found.boot === boot) return 0;
  return withFileLock(join(layersDir, LOCK), async () => {
    const marker = readMarker(layersDir);
    if (marker === undefined || marker.boot === boot) return 0;
    let removed = 0;
    const times = readRecoveredTimes(layersDir);
    for (const hex of [...times.keys()]) if (statSync(join(layersDir, hex, 'committed'), { throwIfNoEntry: false })) times.delete(hex);
    for (const name of readdirSync(layersDir)) {
      if (name.startsWith('.')) continue;
      const committed = statSync(join(layersDir, name, 'committed'), { throwIfNoEntry: false });
      if (!committed || committed.ctimeMs < marker.since) continue;
      // As LayerStore.createdAt reads it (node rounds mtimeMs to the millisecond), which utimes sets back exactly.
      times.set(name, committed.mtime.getTime());
      await remove(name);
      removed++;
    }
    const timesFile = join(layersDir, RECOVERED_TIMES);
    const timesTmp = join(layersDir, `.tmp-recovered-times-${process.pid}`);
    writeFileSync(timesTmp, JSON.stringify(Object.fromEntries(times)));
    renameSync(timesTmp, timesFile);
    await syncfs(root);
    unlinkSync(join(layersDir, MARKER));
    return removed;
  });
}

/** The times recovery kept of the layers it removed (see RECOVERED_TIMES); empty when there are none. */
export function readRecoveredTimes(layersDir: string): Map<string, number> {
  const text = readHostFile(join(layersDir, RECOVERED_TIMES));
  if (text === undefined) return new Map();
  try {
    const parsed = JSON.parse(text) as Record<string, unknown>;
    return new Map(Object.entries(parsed).filter((e): e is [string, number] => /^[0-9a-f]{64}$/.test(e[0]) && typeof e[1] === 'number'));
  } catch {
    return new Map();
  }
}

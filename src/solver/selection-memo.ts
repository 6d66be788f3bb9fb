import { mkdir, readFile } from 'node:fs/promises';
import { sweepMemoDir } from './memo-sweep.js';
import { join } from 'node:path';
import { canonicalJson } from '../oci/canonical-json.js';
import { digestHex, isDigest, sha256, type Digest } from '../oci/digest.js';
import { writeFileAtomic } from '../oci/image-layout.js';
import type { SelectionChecksum } from './context-checksum.js';
import { filesJson, jsonWithMember, SelectedFiles } from './selected-files.js';

const VERSION = 1;

/** What a selection from a solved rootfs is: its layer chain (immutable content) and the paths asked for. */
export interface RootfsSelection {
  /** Diff IDs, bottom to top. */
  readonly layers: readonly Digest[];
  readonly srcPaths: readonly string[];
  readonly allowWildcard: boolean;
  readonly parents?: boolean;
}

interface MemoFile {
  readonly version: number;
  readonly layers: readonly Digest[];
  readonly digest: Digest;
  readonly files: readonly (readonly [string, Digest])[];
}

/**
 * Remembers the checksum of a selection from a stage's or image's root filesystem, under
 * `<root>/cache/selections/`. Layers never change once committed, so a checksum made from one
 * chain holds for as long as that chain exists: a rebuild whose COPY --from source is a cache hit
 * neither mounts the source nor reads a byte of it. Entries are written by rename; one that is
 * damaged or foreign is ignored (the selection is checksummed again), and prune drops entries
 * whose layers are gone (`sweepSelectionMemo`).
 */
export class SelectionMemo {
  readonly #dir: string;

  constructor(dir: string) {
    this.#dir = dir;
  }

  async get(sel: RootfsSelection): Promise<SelectionChecksum | undefined> {
    let data: Partial<MemoFile>;
    try {
      data = JSON.parse(await readFile(this.#path(sel), 'utf8')) as Partial<MemoFile>;
    } catch {
      return undefined;
    }
    if (data.version !== VERSION || !isDigest(data.digest ?? '') || !Array.isArray(data.files)) return undefined;
    if (canonicalJson(data.layers) !== canonicalJson(sel.layers)) return undefined;
    const files = new SelectedFiles();
    for (const e of data.files) {
      if (!Array.isArray(e) || typeof e[0] !== 'string' || !isDigest(e[1])) return undefined;
      files.add(e[0], e[1]);
    }
    return { digest: data.digest!, files };
  }

  async set(sel: RootfsSelection, sum: SelectionChecksum): Promise<void> {
    await mkdir(this.#dir, { recursive: true });
    await writeFileAtomic(this.#path(sel), memoJson(sel, sum));
  }

  #path(sel: RootfsSelection): string {
    const id = sha256(canonicalJson({ v: VERSION, layers: sel.layers, srcPaths: sel.srcPaths, allowWildcard: sel.allowWildcard, ...(sel.parents ? { parents: true } : {}) }));
    return join(this.#dir, `${digestHex(id)}.json`);
  }
}

/** The memo file's JSON (a {@link MemoFile}) in pieces: the file list of a large tree is never one string. */
function* memoJson(sel: RootfsSelection, sum: SelectionChecksum): Generator<string> {
  const head: Omit<MemoFile, 'files'> = { version: VERSION, layers: sel.layers, digest: sum.digest };
  yield* jsonWithMember(head, 'files', filesJson(sum.files));
}

/** Prune's sweep: entries naming a layer that is gone, unreadable ones, and stray temp files. @returns how many entries went. */
export function sweepSelectionMemo(dir: string, present: (diffId: Digest) => boolean): Promise<number> {
  return sweepMemoDir(dir, async (path) => {
    const layers = await readFile(path, 'utf8')
      .then((t) => (JSON.parse(t) as Partial<MemoFile>).layers)
      .catch(() => undefined);
    return Array.isArray(layers) && layers.every((d) => isDigest(d)) ? layers : undefined;
  }, present);
}

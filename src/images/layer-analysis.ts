import type { LayerChange } from './layer-changes.js';

/** Per-layer numbers of `tsbuild analyze` (field names are the JSON contract, docs/analyze.md). */
export interface LayerReport {
  readonly index: number;
  /** Bytes of regular files in the layer tar (uncompressed content, headers not counted). */
  sizeBytes: number;
  /** Non-directory entries in the layer (whiteouts not counted). */
  files: number;
  addedFiles: number;
  addedBytes: number;
  changedFiles: number;
  changedBytes: number;
  /** Lower files this layer deletes (whiteouts, opaque directories, a file replacing a directory). */
  removedFiles: number;
  removedBytes: number;
  /** Bytes of this layer's files that a later layer overwrites or deletes. */
  wastedBytes: number;
}

/** A marker of the tree view of one layer: Added, Modified, Deleted. */
export type ChangeMark = 'A' | 'M' | 'D';

export interface FileStat {
  readonly path: string;
  readonly size: number;
  /** Layer index its bytes come from. */
  readonly layer: number;
}

export interface WastedFile {
  readonly path: string;
  /** Bytes of its versions overwritten or deleted later. */
  readonly wastedBytes: number;
  /** Versions of the path across layers (a deletion is not a version). */
  readonly versions: number;
  /** Whether the image ends without it. */
  readonly removed: boolean;
}

export interface AnalysisResult {
  readonly layers: readonly LayerReport[];
  readonly totalBytes: number;
  readonly wastedBytes: number;
  readonly efficiency: number;
  /** Paths whose bytes are (partly) wasted: present in more than one layer, or deleted. */
  readonly inefficientFiles: number;
  readonly biggestFiles: readonly FileStat[];
  readonly biggestWasted: readonly WastedFile[];
  /** The final filesystem, for the tree view. */
  readonly root: FsNode;
  /** Changes of the layer asked for with `markLayer`. */
  readonly marks: readonly { path: string; mark: ChangeMark; size: number }[];
}

/**
 * One path ever seen. Kept after deletion (present=false) so its waste is still reported;
 * `children` only for directories. A few numbers per path, no contents.
 */
export interface FsNode {
  children?: Map<string, FsNode>;
  dir: boolean;
  present: boolean;
  size: number;
  layer: number;
  versions: number;
  wasted: number;
}

const newNode = (dir: boolean, layer: number): FsNode => ({ dir, present: true, size: 0, layer, versions: 0, wasted: 0 });

/**
 * Folds layers' changes, base first, into per-layer and image-wide numbers.
 *
 * Definitions (dive's idea, stated exactly; docs/analyze.md): totalBytes is every regular
 * file's size in every layer; a version of a path is wasted when a later layer overwrites or
 * deletes it (its bytes stay in the image but cannot be seen); wastedBytes is their sum and
 * efficiency is 1 - wastedBytes / totalBytes (1 for an image with no file bytes).
 * Directory entries carry no bytes and are not files here.
 */
export class LayerAnalysis {
  readonly #root: FsNode = { ...newNode(true, 0), children: new Map() };
  readonly #layers: LayerReport[] = [];
  readonly #markLayer: number | undefined;
  readonly #marks: { path: string; mark: ChangeMark; size: number }[] = [];
  #total = 0;
  #wasted = 0;

  constructor(opts: { markLayer?: number } = {}) {
    this.#markLayer = opts.markLayer;
  }

  /** Adds the next layer (in order). */
  add(changes: readonly LayerChange[]): LayerReport {
    const i = this.#layers.length;
    const r: LayerReport = { index: i, sizeBytes: 0, files: 0, addedFiles: 0, addedBytes: 0, changedFiles: 0, changedBytes: 0, removedFiles: 0, removedBytes: 0, wastedBytes: 0 };
    this.#layers.push(r);
    // Whiteouts first: an entry's own path may be whited out and re-added in one layer (a rename back).
    for (const c of changes) {
      if (c.kind === 'whiteout') {
        const n = this.#lookup(c.path);
        if (n?.present) this.#remove(n, c.path, i);
      } else if (c.kind === 'opaque') {
        const n = this.#lookup(c.path);
        if (n?.present && n.dir) this.#removeLower(n, c.path, i);
      }
    }
    for (const c of changes) {
      if (c.kind === 'dir') this.#dir(c.path, i);
      else if (c.kind === 'file') this.#file(c.path, c.size, i, r);
    }
    return r;
  }

  #lookup(path: string): FsNode | undefined {
    let n: FsNode | undefined = this.#root;
    for (const part of path.split('/')) {
      n = n.children?.get(part);
      if (!n) return undefined;
    }
    return n;
  }

  /** The node for `path`, creating it and missing parents (implicit directories). */
  #ensure(path: string, layer: number, dir: boolean): { node: FsNode; existed: boolean } {
    const parts = path.split('/');
    let n = this.#root;
    for (let k = 0; k < parts.length; k++) {
      const last = k === parts.length - 1;
      let child = n.children?.get(parts[k]!);
      if (!child) {
        child = newNode(last ? dir : true, layer);
        child.present = false;
        if (!last || dir) child.children = new Map();
        (n.children ??= new Map()).set(parts[k]!, child);
        if (last) return { node: child, existed: false };
      }
      if (!last) {
        if (!child.present || !child.dir) {
          // A file in the way of a path a layer adds under it: the file is gone.
          if (child.present) this.#remove(child, parts.slice(0, k + 1).join('/'), layer);
          child.present = true;
          child.dir = true;
          child.layer = layer;
          child.children ??= new Map();
        }
      }
      n = child;
    }
    return { node: n, existed: true };
  }

  #dir(path: string, layer: number): void {
    const { node } = this.#ensure(path, layer, true);
    if (node.present && !node.dir) this.#remove(node, path, layer);
    node.present = true;
    node.dir = true;
    node.layer = layer;
    node.children ??= new Map();
  }

  #file(path: string, size: number, layer: number, r: LayerReport): void {
    const { node } = this.#ensure(path, layer, false);
    r.files++;
    r.sizeBytes += size;
    this.#total += size;
    let mark: ChangeMark = 'A';
    if (node.present && node.dir) {
      // A file replacing a directory: what was under it goes.
      this.#removeLower(node, path, layer);
      r.addedFiles++;
      r.addedBytes += size;
    } else if (node.present) {
      this.#waste(node, node.size);
      r.changedFiles++;
      r.changedBytes += size;
      mark = 'M';
    } else {
      r.addedFiles++;
      r.addedBytes += size;
    }
    node.present = true;
    node.dir = false;
    node.size = size;
    node.layer = layer;
    node.versions++;
    if (layer === this.#markLayer) this.#marks.push({ path, mark, size });
  }

  /** Marks a version of `node` as wasted: attributed to the layer that added it. */
  #waste(node: FsNode, bytes: number): void {
    node.wasted += bytes;
    this.#wasted += bytes;
    this.#layers[node.layer]!.wastedBytes += bytes;
  }

  /** Deletes a present node (and, for a directory, everything under it) in `layer`. */
  #remove(node: FsNode, path: string, layer: number): void {
    if (node.dir) this.#removeLower(node, path, layer);
    else {
      const r = this.#layers[layer]!;
      r.removedFiles++;
      r.removedBytes += node.size;
      this.#waste(node, node.size);
      if (layer === this.#markLayer) this.#marks.push({ path, mark: 'D', size: node.size });
    }
    node.present = false;
  }

  /** Deletes what lower layers put under directory `node` (an opaque directory). */
  #removeLower(node: FsNode, path: string, layer: number): void {
    for (const [name, child] of node.children ?? []) {
      if (!child.present) continue;
      const p = `${path}/${name}`;
      if (child.dir) {
        this.#removeLower(child, p, layer);
        if (child.layer < layer) child.present = false;
      } else if (child.layer < layer) this.#remove(child, p, layer);
    }
  }

  /** The report, with the `top` biggest files of the final filesystem and the `top` most wasteful paths. */
  finish(top: number): AnalysisResult {
    const files: FileStat[] = [];
    const wasted: WastedFile[] = [];
    let inefficient = 0;
    const walk = (n: FsNode, path: string) => {
      for (const [name, child] of n.children ?? []) {
        const p = path ? `${path}/${name}` : name;
        if (child.present && !child.dir && child.size > 0) pushTop(files, { path: '/' + p, size: child.size, layer: child.layer }, top, (f) => f.size);
        if (child.wasted > 0 || (child.versions > 1 && !child.dir)) {
          inefficient++;
          pushTop(wasted, { path: '/' + p, wastedBytes: child.wasted, versions: child.versions, removed: !child.present || child.dir }, top, (f) => f.wastedBytes);
        }
        if (child.children) walk(child, p);
      }
    };
    walk(this.#root, '');
    return {
      layers: this.#layers,
      totalBytes: this.#total,
      wastedBytes: this.#wasted,
      efficiency: this.#total === 0 ? 1 : 1 - this.#wasted / this.#total,
      inefficientFiles: inefficient,
      biggestFiles: files,
      biggestWasted: wasted,
      root: this.#root,
      marks: this.#marks,
    };
  }
}

/** Keeps `list` the `top` largest by `key`, sorted descending (ties by path, for stable output). */
function pushTop<T extends { path: string }>(list: T[], item: T, top: number, key: (t: T) => number): void {
  if (top <= 0) return;
  if (list.length >= top && key(list[list.length - 1]!) >= key(item)) return;
  let at = list.length;
  while (at > 0 && (key(list[at - 1]!) < key(item) || (key(list[at - 1]!) === key(item) && list[at - 1]!.path > item.path))) at--;
  list.splice(at, 0, item);
  if (list.length > top) list.pop();
}

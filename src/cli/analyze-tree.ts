import type { ChangeMark, FsNode } from '../images/layer-analysis.js';
import { bytes } from './progress-format.js';

/** A file of a tree view: path without leading slash, its size, and for a layer's view its change. */
export interface TreeLeaf {
  readonly path: string;
  readonly size: number;
  readonly mark?: ChangeMark;
}

interface Dir {
  size: number;
  marks: Set<ChangeMark>;
  children: Map<string, Dir | TreeLeaf>;
}

/** The files of the final filesystem (the aggregate view). */
export function finalFiles(root: FsNode): TreeLeaf[] {
  const out: TreeLeaf[] = [];
  const walk = (n: FsNode, path: string) => {
    for (const [name, child] of n.children ?? []) {
      if (!child.present) continue;
      const p = path ? `${path}/${name}` : name;
      if (child.dir) walk(child, p);
      else out.push({ path: p, size: child.size });
    }
  };
  walk(root, '');
  return out;
}

/**
 * A static, indented tree as `dive` shows one (no interactive UI): directories carry the sum of
 * what is below them, children sorted by name, at most `depth` levels (deeper ones are summed
 * into their directory). With marks, each line starts with A (added), M (modified) or D (deleted);
 * a directory shows the marks below it.
 */
export function renderTree(leaves: readonly TreeLeaf[], depth: number): string {
  const root: Dir = { size: 0, marks: new Set(), children: new Map() };
  for (const leaf of leaves) {
    const parts = leaf.path.split('/');
    let d = root;
    d.size += leaf.size;
    if (leaf.mark) d.marks.add(leaf.mark);
    for (let k = 0; k < parts.length - 1; k++) {
      let next = d.children.get(parts[k]!);
      if (!next || !('children' in next)) {
        next = { size: 0, marks: new Set(), children: new Map() };
        d.children.set(parts[k]!, next);
      }
      d = next;
      d.size += leaf.size;
      if (leaf.mark) d.marks.add(leaf.mark);
    }
    d.children.set(parts[parts.length - 1]!, leaf);
  }
  const marked = leaves.some((l) => l.mark);
  const lines: string[] = [];
  const line = (mark: string, size: number, indent: number, name: string) => lines.push(`${marked ? mark.padEnd(3) + ' ' : ''}${bytes(size).padStart(9)}  ${'  '.repeat(indent)}${name}`);
  const walk = (d: Dir, indent: number) => {
    for (const name of [...d.children.keys()].sort()) {
      const c = d.children.get(name)!;
      if ('children' in c) {
        line([...c.marks].sort().join(''), c.size, indent, name + '/');
        if (indent + 1 < depth) walk(c, indent + 1);
      } else line(c.mark ?? '', c.size, indent, name);
    }
  };
  line([...root.marks].sort().join(''), root.size, 0, '/');
  walk(root, 1);
  return lines.join('\n') + '\n';
}

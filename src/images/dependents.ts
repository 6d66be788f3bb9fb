import type { ImageLayout } from '../oci/image-layout.js';
import type { ImageConfig } from '../oci/image.js';
import { readImage } from '../oci/image-reader.js';

/** A tagged image built on top of another (its layers start with all of the other's). */
export interface Dependent {
  readonly name: string;
  readonly digest: string;
}

/**
 * The rule `rmi` applies: removing `name` is refused when it is the last name of its image and
 * another tagged image is built on it: the other's layers start with all of this image's and its
 * history starts with this image's history and goes on (a RUN that changed no file adds history
 * but no layer, so layers alone can't tell). Images without history count by layers alone (a
 * strict prefix). Other names of the same image keep it, so removing one of several names never
 * has dependents. Returns the dependents that make removal refused.
 */
export async function dependentsBlockingRemoval(layout: ImageLayout, name: string): Promise<Dependent[]> {
  const entries = await layout.list();
  const self = entries.find((e) => e.name === name);
  if (!self) return [];
  if (entries.some((e) => e.name !== name && e.descriptor.digest === self.descriptor.digest)) return [];
  const base = (await readImage(layout.blobs, self.descriptor, undefined, { anyPlatform: true })).config;
  const out: Dependent[] = [];
  for (const e of entries) {
    if (e.descriptor.digest === self.descriptor.digest) continue;
    const other = (await readImage(layout.blobs, e.descriptor, undefined, { anyPlatform: true })).config;
    if (builtOn(other, base)) out.push({ name: e.name, digest: e.descriptor.digest });
  }
  return out;
}

function builtOn(child: ImageConfig, parent: ImageConfig): boolean {
  const p = parent.rootfs.diff_ids;
  const c = child.rootfs.diff_ids;
  if (!p.every((d, i) => c[i] === d)) return false;
  const ph = parent.history ?? [];
  const ch = child.history ?? [];
  if (ph.length === 0 || ch.length === 0) return p.length > 0 && c.length > p.length;
  const same = (a: (typeof ph)[number], b: (typeof ph)[number]) => a.created_by === b.created_by && !!a.empty_layer === !!b.empty_layer && a.created === b.created;
  return ch.length > ph.length && ph.every((h, i) => same(h, ch[i]!));
}

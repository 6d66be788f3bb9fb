import { join } from 'node:path';

/**
 * Everything tsbuild keeps lives under one root. Temporary files sit on the same filesystem as
 * their destinations so that a rename publishes them atomically.
 */
export interface RootDirs {
  readonly root: string;
  /** The local image store: itself an OCI image layout (index.json tags, blobs/sha256). */
  readonly store: string;
  /** Unpacked layers in overlay format: layers/<diffid hex>/diff, plus their short link. */
  readonly layers: string;
  /** Short symlinks to layer dirs (as overlay2's l/), keeping mount options under the page size. */
  readonly links: string;
  /** Working overlay mounts: mounts/<id>/{upper,work,merged}. */
  readonly mounts: string;
  /** runc's --root state directory. */
  readonly runc: string;
  readonly cache: string;
  readonly tmp: string;
}

export function rootDirs(root: string): RootDirs {
  return {
    root,
    store: join(root, 'store'),
    layers: join(root, 'layers'),
    links: join(root, 'l'),
    mounts: join(root, 'mounts'),
    runc: join(root, 'runc'),
    cache: join(root, 'cache'),
    tmp: join(root, 'tmp'),
  };
}

import type { Ctx } from '../ctx.js';
import type { CacheRunMount } from './graph.js';

/**
 * What identifies a `RUN --mount=type=cache` across machines: its id, and the owner and mode it
 * was made with when given (BuildKit keys such a cache by that base too). Mounts seeded `from`
 * another stage are not portable: their content is that stage's, which the cache records carry.
 */
export interface PortableCacheMount {
  readonly id: string;
  readonly sharing: 'shared' | 'private' | 'locked';
  readonly owner?: { readonly mode: number; readonly uid: number; readonly gid: number };
}

/** The key two builds agree on for one cache mount (sharing is how it is used, not what it holds). */
export function portableMountKey(m: PortableCacheMount): string {
  return JSON.stringify([m.id, m.owner?.mode ?? null, m.owner?.uid ?? null, m.owner?.gid ?? null]);
}

/** The portable identity of a cache mount; undefined for one seeded `from` another stage. */
export function portableMount(m: CacheRunMount): PortableCacheMount | undefined {
  if (m.input !== undefined) return undefined;
  return { id: m.id, sharing: m.sharing, ...(m.owned ? { owner: { mode: m.mode, uid: m.uid, gid: m.gid } } : {}) };
}

/** Portable cache mounts (`--cache-from`): fills a cache directory a RUN is about to create. */
export interface CacheMountTransfer {
  /** Fills `dir` (new, empty) from an imported cache; false when no imported cache has the mount. */
  restore(mount: PortableCacheMount, dir: string, ctx: Ctx): Promise<boolean>;
}

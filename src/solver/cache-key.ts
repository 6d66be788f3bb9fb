import { canonicalJson } from '../oci/canonical-json.js';
import { sha256, type Digest } from '../oci/digest.js';
import type { Op } from './graph.js';

/**
 * Proxy variables change how a RUN reaches the network, not what it builds; BuildKit's
 * ExecOp.CacheMap strips them too, so switching proxies keeps the cache.
 */
export const PROXY_ENV = new Set(['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy']);

/**
 * What of an op goes into its cache key: the op definition minus what does not change the
 * result. The context op drops its absolute directory (moving a checkout keeps the cache; the
 * files actually copied are checksummed by the COPY that selects them), RUN drops proxy
 * variables. Vertex names and source positions are never part of an op at all.
 */
export function keyedOp(op: Op): unknown {
  switch (op.kind) {
    case 'image':
      return op;
    case 'context': {
      const { dir: _dir, ...rest } = op;
      return rest;
    }
    case 'exec':
      return { ...op, env: op.env.filter((e) => !PROXY_ENV.has(envName(e))) };
    case 'file':
    case 'merge':
      return op;
    case 'http':
      // With --checksum the content is the checksum wherever it comes from (BuildKit keys the
      // http source by it), so a moved URL still hits; the name is part of the layer.
      return op.checksum ? { kind: 'http', checksum: op.checksum, filename: op.filename } : op;
    default: {
      const never: never = op;
      return never;
    }
  }
}

/** Everything a cache key is made of, kept so that a miss can be explained against the last build. */
export interface KeyParts {
  /** keyedOp(op). */
  readonly op: unknown;
  /** Cache keys of the vertex's inputs, in input order. */
  readonly inputs: readonly Digest[];
  /** FileOp only: per action, the checksum of the context files it selects (undefined: not from the context). */
  readonly content?: readonly (Digest | undefined)[];
}

/**
 * Bumped when an op's result changes for the same key, so results cached under the old meaning
 * are not reused: 2 — the BuildKit conformance pass (ADD --chown owns extracted entries, sockets,
 * COPY onto a symlink, unknown user names, COPY --parents, RUN --mount defaults).
 */
const KEY_VERSION = 2;

/** The cache key: sha256 of the canonical JSON of its parts. */
export function cacheKey(parts: KeyParts): Digest {
  return sha256(canonicalJson({ v: KEY_VERSION, op: parts.op, inputs: parts.inputs, content: parts.content }));
}

/** `NAME=value` → `NAME`; an entry without '=' is all name. */
export function envName(entry: string): string {
  const eq = entry.indexOf('=');
  return eq < 0 ? entry : entry.slice(0, eq);
}

import { canonicalJson } from '../oci/canonical-json.js';
import { sha256, type Digest } from '../oci/digest.js';
import type { Platform } from '../oci/image.js';
import type { SourceLocation } from '../errors.js';

/**
 * The build graph between frontend and solver. Ops are plain data; a vertex's digest covers its
 * op and its inputs' digests only — names and source positions live in `meta` and are never
 * hashed (BuildKit keeps them in side maps for the same reason).
 */
export type Op = ImageOp | ContextOp | ExecOp | FileOp;

/** A base image: result is its root filesystem (layers). Its config goes to the frontend via ImageResolver. */
export interface ImageOp {
  readonly kind: 'image';
  /** Normalized reference, e.g. `docker.io/library/busybox:latest`. */
  readonly ref: string;
  /** Manifest digest when the resolver pinned it. */
  readonly digest?: Digest;
  readonly platform: Platform;
}

/** The build context (or a named context directory), read in place; result is a directory. */
export interface ContextOp {
  readonly kind: 'context';
  readonly name: string;
  /** Absolute path of the context directory. */
  readonly dir: string;
  /** .dockerignore patterns (already read and cleaned); matched with dockerignore rules. */
  readonly excludes: readonly string[];
}

/** RUN: inputs[0] is the root filesystem; result is that rootfs plus one layer (or none if nothing changed). */
export interface ExecOp {
  readonly kind: 'exec';
  readonly args: readonly string[];
  readonly env: readonly string[];
  readonly cwd: string;
  /** As written in USER: `name`, `uid`, `name:group`, `uid:gid`; empty means root. */
  readonly user: string;
  readonly network: 'host' | 'none';
}

/**
 * COPY/ADD/WORKDIR: inputs[0] is the rootfs written to (`base: 'scratch'` when there is none);
 * `CopyAction.source` indexes `Vertex.inputs` for where files come from.
 */
export interface FileOp {
  readonly kind: 'file';
  readonly base: 'input' | 'scratch';
  readonly actions: readonly FileAction[];
}

export type FileAction = CopyAction | MkdirAction | MkfileAction;

export interface Chown {
  /** Name or numeric id, resolved in the destination rootfs's /etc/passwd. */
  readonly user: string;
  readonly group?: string;
}

export interface CopyAction {
  readonly type: 'copy';
  readonly source: number;
  /** Paths relative to the source root (context or stage rootfs); may hold wildcards when allowWildcard. */
  readonly srcPaths: readonly string[];
  /** Absolute destination; a trailing '/' means "into this directory". */
  readonly dest: string;
  readonly chown?: Chown;
  /** Octal permission string as given to --chmod, e.g. "755". */
  readonly chmod?: string;
  readonly allowWildcard: boolean;
  /** ADD: extract local tar archives (gzip, bzip2, xz detected by content). */
  readonly unpackArchives: boolean;
}

/** Writes a file with inline content (COPY heredocs); missing parents are created 0755. */
export interface MkfileAction {
  readonly type: 'mkfile';
  /** Absolute path in the rootfs written to. */
  readonly path: string;
  /** UTF-8 content. */
  readonly data: string;
  readonly mode: number;
}

export interface MkdirAction {
  readonly type: 'mkdir';
  readonly path: string;
  readonly mode: number;
  readonly chown?: Chown;
}

export interface VertexMeta {
  /** Human name for progress, e.g. `[build 2/4] RUN make`. */
  readonly name: string;
  readonly location?: SourceLocation;
  readonly ignoreCache?: boolean;
  /**
   * RUN only: proxy build-args (HTTP_PROXY=…), added to the process env. Kept here, outside the
   * op, so that as in BuildKit a changed proxy neither changes the digest nor misses the cache.
   */
  readonly proxyEnv?: readonly string[];
}

export interface Vertex {
  readonly digest: Digest;
  readonly op: Op;
  readonly inputs: readonly Vertex[];
  readonly meta: VertexMeta;
}

export function makeVertex(op: Op, inputs: readonly Vertex[], meta: VertexMeta): Vertex {
  const digest = sha256(canonicalJson({ op, inputs: inputs.map((i) => i.digest) }));
  return Object.freeze({ digest, op, inputs: Object.freeze([...inputs]), meta });
}

/** A layer known by its uncompressed digest; its directory lives in the LayerStore. */
export interface LayerRef {
  readonly diffId: Digest;
}

/** What a solved vertex yields. */
export type Result = RootfsResult | DirResult;

export interface RootfsResult {
  readonly kind: 'rootfs';
  /** Bottom to top. Empty for scratch. */
  readonly layers: readonly LayerRef[];
}

export interface DirResult {
  readonly kind: 'dir';
  readonly path: string;
  readonly excludes: readonly string[];
}

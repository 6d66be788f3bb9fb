import { canonicalJson } from '../oci/canonical-json.js';
import { sha256, type Digest } from '../oci/digest.js';
import type { Platform } from '../oci/image.js';
import type { SourceLocation } from '../errors.js';

/**
 * The build graph between frontend and solver. Ops are plain data; a vertex's digest covers its
 * op and its inputs' digests only — names and source positions live in `meta` and are never
 * hashed (BuildKit keeps them in side maps for the same reason).
 */
export type Op = ImageOp | ContextOp | ExecOp | FileOp | MergeOp | HttpOp;

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

/**
 * ADD <http(s) URL>: the downloaded file alone in a one-layer rootfs, named `filename` (the
 * decoded URL path's last segment, `__unnamed__` without one, as BuildKit's frontend names it),
 * mode 0600 and mtime from Last-Modified (else the epoch) as BuildKit's http source. With `checksum` the file must
 * have that digest, and the cache key is the checksum (no download on a hit).
 */
export interface HttpOp {
  readonly kind: 'http';
  readonly url: string;
  /** `sha256:<hex>` as given to --checksum. */
  readonly checksum?: string;
  /** One plain path segment; absent only in graphs older than that rule (then `__unnamed__`). */
  readonly filename?: string;
}

/** RUN: inputs[0] is the root filesystem; result is that rootfs plus one layer (or none if nothing changed). */
export interface ExecOp {
  readonly kind: 'exec';
  readonly args: readonly string[];
  readonly env: readonly string[];
  readonly cwd: string;
  /** As written in USER: `name`, `uid`, `name:group`, `uid:gid`; empty means root. */
  readonly user: string;
  /** `sandbox` is BuildKit's default (a private network namespace); `host` needs the network.host entitlement. */
  readonly network: 'sandbox' | 'host' | 'none';
  /** `--ulimit` of the build: resource limits by RLIMIT name; absent when none were given. */
  readonly ulimits?: readonly Ulimit[];
  /** `--shm-size` of the build, in bytes; absent = 64 MiB. */
  readonly shmSize?: number;
  /** `--memory`, `--cpus`, `--pids-limit`…: cgroup limits of the build; absent when none were given. */
  readonly limits?: RunLimits;
  /** `--add-host` entries, `name ip` each, added to /etc/hosts; absent when there are none. */
  readonly extraHosts?: readonly { readonly host: string; readonly ip: string }[];
  /** RUN --mount entries, in order; absent when there are none (keeps older digests stable). */
  readonly mounts?: readonly RunMount[];
  /** RUN --security=insecure: full capabilities, no masked paths (needs `--allow security.insecure`). */
  readonly security?: 'insecure';
  /** The container's hostname, from the BUILDKIT_SANDBOX_HOSTNAME build arg; absent = tsbuild's default. */
  readonly hostname?: string;
}

/**
 * Cgroup limits of a RUN, as the build's flags gave them (docker/buildah semantics). Only what
 * was given is set, so the cache key changes only with the flags.
 */
export interface RunLimits {
  /** `--memory`, bytes. */
  readonly memory?: number;
  /** `--memory-swap`: memory plus swap, bytes; -1 = unlimited swap. Absent with `memory`: twice `memory`. */
  readonly memorySwap?: number;
  /** `--cpu-shares`: relative weight (1024 = default). */
  readonly cpuShares?: number;
  /** `--cpus`: CPUs as a decimal, a quota over a 100 ms period. */
  readonly cpus?: number;
  /** `--cpu-period` / `--cpu-quota`, microseconds. */
  readonly cpuPeriod?: number;
  readonly cpuQuota?: number;
  /** `--cpuset-cpus` / `--cpuset-mems`: lists such as `0-2,4`. */
  readonly cpusetCpus?: string;
  readonly cpusetMems?: string;
  /** `--pids-limit`; 0 = no limit (lifts the default). Absent = the default limit. */
  readonly pidsLimit?: number;
}

/** A process resource limit: `type` is the RLIMIT_* name. */
export interface Ulimit {
  readonly type: string;
  readonly soft: number;
  readonly hard: number;
}

/** One RUN --mount. `input` indexes `Vertex.inputs` (a stage rootfs or a context directory). */
export type RunMount = CacheRunMount | BindRunMount | TmpfsRunMount | SecretRunMount | SshRunMount;

/** A directory persisted under `<root>/cache/mounts/`, shared by every RUN naming the same id; never in a layer. */
export interface CacheRunMount {
  readonly type: 'cache';
  readonly target: string;
  readonly id: string;
  readonly sharing: 'shared' | 'private' | 'locked';
  readonly readonly: boolean;
  /** Seeds a new cache directory from `source` in this input. */
  readonly input?: number;
  readonly source: string;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /**
   * mode, uid or gid was given: BuildKit then makes the cache on a base it builds (a mkdir), as it
   * does for `from`, and keys the cache directory by that base, which --no-cache makes anew.
   */
  readonly owned?: true;
}

/** `source` of an input bound at `target`; read-only unless `readwrite`, whose writes are discarded. */
export interface BindRunMount {
  readonly type: 'bind';
  readonly target: string;
  readonly input: number;
  readonly source: string;
  readonly readwrite: boolean;
}

export interface TmpfsRunMount {
  readonly type: 'tmpfs';
  readonly target: string;
  /** Bytes; absent = the kernel's default (half of RAM). */
  readonly size?: number;
}

/** A build secret by id only: its content is read at run time and never enters the graph. */
export interface SecretRunMount {
  readonly type: 'secret';
  readonly id: string;
  /** File target; absent with `env` means only the variable is set. */
  readonly target?: string;
  readonly env?: string;
  readonly required: boolean;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
}

/** The `--ssh` agent socket `id`, at `target` with this owner and mode, with SSH_AUTH_SOCK pointing at it. */
export interface SshRunMount {
  readonly type: 'ssh';
  readonly id: string;
  readonly target: string;
  readonly required: boolean;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
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

/**
 * Root filesystems stacked: inputs[0]'s layers, then each further input's layers on top, with no
 * new layer made. COPY --link builds its copy on scratch and merges it onto the parent, so the
 * copy's own cache key (and layer) does not depend on the parent and survives a base change.
 */
export interface MergeOp {
  readonly kind: 'merge';
}

export type FileAction = CopyAction | MkdirAction | MkfileAction;

export interface Chown {
  /** Name or numeric id, resolved in the destination rootfs's /etc/passwd (or `CopyAction.chownFrom`'s). */
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
  /**
   * COPY --link with --chown names: the input whose /etc/passwd and /etc/group resolve them
   * (the stage the copy is merged onto), since the copy itself is made on scratch.
   */
  readonly chownFrom?: number;
  /** --chmod as given: octal (`755`) or symbolic (`u=rwx,go=rx`); see chmod-spec.ts. */
  readonly chmod?: string;
  /** --exclude patterns (dockerignore syntax), matched relative to each copied source; absent when none. */
  readonly excludes?: readonly string[];
  /** --parents: each source keeps its path (relative to the source root) under the destination. */
  readonly parents?: boolean;
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
  /** RUN only: the stage's SHELL when one was set (default `/bin/sh -c`), for the --on-error shell. */
  readonly shell?: readonly string[];
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

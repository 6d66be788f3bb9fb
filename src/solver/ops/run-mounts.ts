import { portableMount, type CacheMountTransfer } from '../cache-mount-transfer.js';
import { acquireFileLock } from '../../oci/index-lock.js';
import { chmod, lstat, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { Ctx } from '../../ctx.js';
import { BuildError, type SourceLocation } from '../../errors.js';
import { digestHex, sha256 } from '../../oci/digest.js';
import { resolveInRoot } from '../../oci/in-root.js';
import { lchownMapped } from '../../oci/lchown-mapped.js';
import type { Snapshot } from '../../runtime/snapshotter.js';
import type { BindMount } from '../../runtime/spec.js';
import type { CacheRunMount, Result, RunMount } from '../graph.js';
import type { Worker } from '../worker.js';
import { PatternMatcher } from '../pattern-matcher.js';
import { TreeCopier } from './copy-tree.js';
import { openSshProxy } from './ssh-proxy.js';

/** Where a `--secret id=…` comes from: a file read at run time, or a value (an env var read by the CLI). */
export type SecretSource = { readonly file: string } | { readonly value: Buffer };

/** Build-wide inputs of RUN mounts that never enter the graph or the cache key. */
export interface RunMountSources {
  readonly secrets: ReadonlyMap<string, SecretSource>;
  /** `--ssh id[=socket]`: agent socket paths by id. */
  readonly ssh: ReadonlyMap<string, string>;
  /** Portable cache mounts: report the cache dirs used, fill new ones from `--cache-from`. */
  readonly cacheMounts?: CacheMountTransfer;
}

/** The sandbox side of a RUN's mounts: what to mount, extra env, and how to let go of it all. */
export interface PreparedMounts {
  readonly mounts: BindMount[];
  /** `NAME=value` entries for secret env= and SSH_AUTH_SOCK; never stored anywhere. */
  readonly env: string[];
  /** Mount targets, so that mount points runc creates for them can be taken out of the layer. */
  readonly targets: string[];
  /** The secret and ssh-socket entries of `mounts`, which an --on-error shell leaves out by default. */
  readonly secretMounts: ReadonlySet<BindMount>;
  release(): Promise<void>;
}

/**
 * Serializes `sharing=locked` cache mounts and tells `private` ones that an id is busy, within
 * one build (one per exec handler). Locked mounts also take a lock file beside the cache dir,
 * which other tsbuild processes on the same root wait for.
 */
export class CacheMountLocks {
  readonly #tails = new Map<string, Promise<void>>();
  readonly #busy = new Map<string, number>();

  /** Waits for earlier holders of `id`, returns the release function. */
  async lock(id: string): Promise<() => void> {
    const prev = this.#tails.get(id) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = prev.then(() => mine);
    this.#tails.set(id, tail);
    await prev;
    return () => {
      release();
      if (this.#tails.get(id) === tail) this.#tails.delete(id);
    };
  }

  /** Marks `id` in use; returns whether it already was, and the unmark function. */
  use(id: string): { busy: boolean; done: () => void } {
    const n = this.#busy.get(id) ?? 0;
    this.#busy.set(id, n + 1);
    return { busy: n > 0, done: () => this.#busy.set(id, (this.#busy.get(id) ?? 1) - 1) };
  }
}

/**
 * Prepares every RUN --mount of an exec op (inputs as solved: [rootfs, ...mount sources]).
 * On failure whatever was already prepared is released before the error propagates.
 */
export async function prepareRunMounts(
  worker: Worker,
  mounts: readonly RunMount[],
  inputs: readonly Result[],
  sources: RunMountSources,
  locks: CacheMountLocks,
  location: SourceLocation | undefined,
  /** The step runs with the cache off (--no-cache): cache mounts with a base start anew. */
  fresh: boolean,
  ctx: Ctx,
): Promise<PreparedMounts> {
  const out: BindMount[] = [];
  const env: string[] = [];
  const targets: string[] = [];
  const secretMounts = new Set<BindMount>();
  const cleanups: (() => Promise<void> | void)[] = [];
  const release = async (): Promise<void> => {
    for (const c of cleanups.reverse()) await c();
    cleanups.length = 0;
  };
  const overlays = new Map<number, Snapshot>();
  /** The host directory for `input`: the context dir, or a (writable, discarded) overlay of a stage. */
  const inputRoot = async (input: number): Promise<string> => {
    const r = inputs[input];
    if (!r) throw new BuildError('INTERNAL', `mount input ${input} missing`);
    if (r.kind === 'dir') return r.path;
    let m = overlays.get(input);
    if (!m) {
      m = await worker.mount(r.layers.map((l) => l.diffId), {}, ctx);
      overlays.set(input, m);
      const mm = m;
      cleanups.push(() => mm.release());
    }
    return m.merged;
  };
  let scratch: string | undefined;
  const tmpDir = async (): Promise<string> => {
    if (!scratch) {
      const dir = await mkdtemp(join(worker.dirs.tmp, 'mounts-'));
      scratch = dir;
      cleanups.push(() => rm(dir, { recursive: true, force: true }));
    }
    return mkdtemp(join(scratch, 'm-'));
  };
  try {
    for (const m of mounts) {
      ctx.signal.throwIfAborted();
      switch (m.type) {
        case 'bind': {
          // Resolved inside its root: runc gets a path with no symlink left to follow.
          const src = await resolveInRoot(await inputRoot(m.input), m.source).catch(() => undefined);
          if (!src) throw new BuildError('RUN_FAILED', `bind mount source ${m.source} not found`, { location });
          let path = src;
          const input = inputs[m.input];
          // A context directory is the user's checkout: rw writes go to a throwaway copy, and
          // so does a context with a .dockerignore, whose excluded files the RUN must not see.
          if (input?.kind === 'dir' && (m.readwrite || input.excludes.length > 0)) {
            path = join(await tmpDir(), 'copy');
            const ignore = input.excludes.length > 0 ? PatternMatcher.compile(input.excludes) : undefined;
            await new TreeCopier({ fromContext: false, ignore }, ctx.signal).copy(src, m.source.replace(/^\/+/, ''), path);
            if (!(await lstat(path).catch(() => undefined))) await mkdir(path);
          }
          out.push({ type: 'bind', destination: m.target, source: path, options: ['rbind', m.readwrite ? 'rw' : 'ro'] });
          targets.push(m.target);
          break;
        }
        case 'cache': {
          let dir = await cacheDir(worker, m, inputs, inputRoot, locks, cleanups, tmpDir, fresh, sources.cacheMounts, ctx);
          // Without `from`, source= is a path inside the cache itself (BuildKit's SourcePath on the
          // cache ref), resolved within it: a link a RUN left there can't lead out of the cache.
          if (m.input === undefined && m.source !== '/') {
            const sub = await resolveInRoot(dir, m.source).catch(() => undefined);
            if (!sub || !(await lstat(sub).catch(() => undefined))?.isDirectory()) {
              throw new BuildError('RUN_FAILED', `cache mount source ${m.source} is not a directory inside cache ${m.id}`, { location });
            }
            dir = sub;
          }
          out.push({ type: 'bind', destination: m.target, source: dir, options: ['rbind', m.readonly ? 'ro' : 'rw'] });
          targets.push(m.target);
          break;
        }
        case 'tmpfs':
          out.push({ type: 'tmpfs', destination: m.target, source: 'tmpfs', options: ['nosuid', 'nodev', ...(m.size !== undefined ? [`size=${m.size}`] : [])] });
          targets.push(m.target);
          break;
        case 'secret': {
          const src = sources.secrets.get(m.id);
          if (!src) {
            if (m.required) throw new BuildError('RUN_FAILED', `secret ${m.id}: not found (it is required)`, { location, hint: `pass it with --secret id=${m.id},src=FILE` });
            break;
          }
          const data = 'value' in src ? src.value : await readFile(src.file);
          // The file lives in this build's private temp dir only while the RUN runs (removed in
          // release(), or with the dir after a crash); it is bound read-only, so it never
          // reaches the upperdir, and nothing about it but the id enters the graph.
          if (m.env) env.push(`${m.env}=${data.toString('utf8')}`);
          if (m.target) {
            const file = join(await tmpDir(), 'secret');
            await writeFile(file, data, { mode: 0o600 });
            await lchownMapped(file, m.uid, m.gid);
            await chmod(file, m.mode);
            const mount: BindMount = { type: 'bind', destination: m.target, source: file, options: ['rbind', 'ro'] };
            out.push(mount);
            secretMounts.add(mount);
            targets.push(m.target);
          }
          break;
        }
        case 'ssh': {
          const sock = sources.ssh.get(m.id);
          if (!sock) {
            if (m.required) throw new BuildError('RUN_FAILED', `ssh agent ${m.id} is required but was not given`, { location, hint: `pass it with --ssh ${m.id}` });
            break;
          }
          const path = join(await tmpDir(), 'ssh.sock');
          const proxy = await openSshProxy(sock, path, m, ctx.signal);
          cleanups.push(() => proxy.close());
          const mount: BindMount = { type: 'bind', destination: m.target, source: path, options: ['rbind'] };
          out.push(mount);
          secretMounts.add(mount);
          targets.push(m.target);
          env.push(`SSH_AUTH_SOCK=${m.target}`);
          break;
        }
      }
    }
  } catch (e) {
    await release();
    throw e;
  }
  return { mounts: out, env, targets, secretMounts, release };
}

/**
 * The persistent directory of a cache mount, `<root>/cache/mounts/<sha256(id)>`, created on first
 * use (mode/uid/gid, seeded from `from`/`source` when given) by a rename, so concurrent builds
 * agree on one. `locked` holds the id for the whole RUN; `private` uses a throwaway directory
 * while the id is busy in this build (BuildKit would keep that one too; we discard it).
 */
async function cacheDir(
  worker: Worker,
  m: CacheRunMount,
  inputs: readonly Result[],
  inputRoot: (i: number) => Promise<string>,
  locks: CacheMountLocks,
  cleanups: (() => Promise<void> | void)[],
  tmpDir: () => Promise<string>,
  fresh: boolean,
  transfer: CacheMountTransfer | undefined,
  ctx: Ctx,
): Promise<string> {
  const portable = portableMount(m);
  const seed = async (dir: string): Promise<void> => {
    if (m.input !== undefined && inputs[m.input]) {
      const src = await resolveInRoot(await inputRoot(m.input), m.source).catch(() => undefined);
      if (src) await new TreeCopier({ fromContext: false }, ctx.signal).copy(src, '', dir);
    }
    // A cache another machine exported (--cache-from): restored before the first RUN mounts it.
    if (portable && transfer) await transfer.restore(portable, dir, ctx);
    await lchownMapped(dir, m.uid, m.gid);
    await chmod(dir, m.mode);
  };
  const base = join(worker.dirs.cache, 'mounts');
  const dir = join(base, await cacheDirName(base, m, inputs, fresh));
  if (m.sharing === 'locked') {
    cleanups.push(await locks.lock(m.id));
    await mkdir(base, { recursive: true });
    // Held for the whole RUN, however long it takes; Ctrl-C (the signal) ends the wait.
    cleanups.push(await acquireFileLock(`${dir}.lock`, { timeoutMs: Number.POSITIVE_INFINITY, signal: ctx.signal }));
  } else if (m.sharing === 'private') {
    const use = locks.use(m.id);
    cleanups.push(use.done);
    if (use.busy) {
      const dir = join(await tmpDir(), 'cache');
      await mkdir(dir);
      await seed(dir);
      return dir;
    }
  }
  if (await lstat(dir).catch(() => undefined)) return dir;
  await mkdir(base, { recursive: true });
  const tmp = await mkdtemp(join(base, '.tmp-'));
  try {
    await seed(tmp);
    await rename(tmp, dir);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    // Another build created it first: use theirs.
    if (!(await lstat(dir).catch(() => undefined))) throw e;
  }
  return dir;
}

/**
 * Where the cache directory of `m` (a mount without `from`) is in this root, if a RUN made it:
 * what `--cache-to …,mounts=` packs, whether or not this build's RUN ran or came from the cache.
 */
export async function persistentCacheDir(worker: Worker, m: CacheRunMount): Promise<string | undefined> {
  if (m.input !== undefined) return undefined;
  const base = join(worker.dirs.cache, 'mounts');
  let name: string;
  if (!m.owned) name = idCacheDirName(m.id);
  else {
    const current = (await readFile(join(base, `${ownedCacheKey(m, null)}.current`), 'utf8').catch(() => '')).trim();
    if (!/^[0-9a-f]{64}$/.test(current)) return undefined;
    name = current;
  }
  const dir = join(base, name);
  return (await lstat(dir).catch(() => undefined))?.isDirectory() ? dir : undefined;
}

/** The directory name of a cache mount without a base: its id's alone. */
function idCacheDirName(id: string): string {
  return digestHex(sha256(id));
}

/** The key of a cache mount with a base (owner, mode, source, `from` content), as BuildKit keys it by its base snapshot. */
function ownedCacheKey(m: CacheRunMount, content: unknown): string {
  return digestHex(sha256(JSON.stringify({ id: m.id, mode: m.mode, uid: m.uid, gid: m.gid, source: m.source, content })));
}

/**
 * The directory name of a cache mount. Without a base it is the id's alone, so --no-cache keeps
 * its contents, as BuildKit does. With a base (`from`, or mode/uid/gid, which BuildKit makes with
 * a mkdir step) BuildKit keys the directory by id and base snapshot (solver/llbsolver/mounts,
 * "cache-dir:ID:REF"), and --no-cache makes that base again, a new snapshot: the mount starts
 * empty (testCacheMountModeNoCache), and later builds reuse the newest one. Here the base is its
 * description (owner, mode, source and the `from` content) and a pointer file names the newest
 * generation; a fresh step starts a new one.
 */
async function cacheDirName(base: string, m: CacheRunMount, inputs: readonly Result[], fresh: boolean): Promise<string> {
  if (!m.owned && m.input === undefined) return idCacheDirName(m.id);
  const from = m.input === undefined ? undefined : inputs[m.input];
  const content = from === undefined ? null : from.kind === 'rootfs' ? from.layers.map((l) => l.diffId) : from.kind === 'dir' ? from.path : null;
  const key = ownedCacheKey(m, content);
  const pointer = join(base, `${key}.current`);
  if (!fresh) {
    const current = (await readFile(pointer, 'utf8').catch(() => '')).trim();
    if (/^[0-9a-f]{64}$/.test(current)) return current;
  }
  const name = digestHex(sha256(`${key}:${randomUUID()}`));
  await mkdir(base, { recursive: true });
  const tmp = `${pointer}.${randomUUID()}`;
  await writeFile(tmp, name);
  await rename(tmp, pointer);
  return name;
}

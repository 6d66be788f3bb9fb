import { chmod, lstat, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, posix } from 'node:path';
import { createReadStream } from 'node:fs';
import type { Ctx } from '../../ctx.js';
import { BuildError } from '../../errors.js';
import { isArchiveFile } from '../../oci/decompress.js';
import { unpackArchive } from '../../oci/layer/unpack-archive.js';
import { atInRoot, followInRoot, mkdirInRoot, resolveInRoot, resolvedInRoot } from '../../oci/in-root.js';
import { isCorruptArchiveError } from '../../oci/archive-errors.js';
import { DEFAULT_EXPANSION_LIMITS, type ExpansionLimits } from '../../oci/layer/expansion-guard.js';
import { resolveChown } from '../../runtime/user.js';
import type { Snapshot } from '../../runtime/snapshotter.js';
import type { CopyAction, FileOp, MkdirAction, MkfileAction, Result } from '../graph.js';
import { PatternMatcher } from '../pattern-matcher.js';
import type { OpHandler } from '../scheduler.js';
import type { Worker } from '../worker.js';
import { commitUpperAsLayer } from './commit-layer.js';
import { expandParentsSource } from './parents-sources.js';
import { expandSources, type CopySource } from './copy-sources.js';
import { parseChmod } from '../chmod-spec.js';
import { TreeCopier, type Owner } from './copy-tree.js';
import { rootfsInput } from './exec.js';

/** COPY, ADD and WORKDIR's mkdir: applied in an overlay mount of the destination rootfs; the upperdir becomes the layer. */
export function fileHandler(worker: Worker): OpHandler<FileOp> {
  return {
    async run(op, inputs, _vertex, ctx) {
      const base = op.base === 'input' ? rootfsInput(inputs[0]) : rootfsInput(undefined);
      const dest = await worker.mount(base.layers.map((l) => l.diffId), {}, ctx);
      const sourceMounts: Snapshot[] = [];
      let upper: string;
      try {
        for (const action of op.actions) {
          if (action.type === 'mkdir') await mkdirAction(dest.merged, action);
          else if (action.type === 'mkfile') await mkfileAction(dest.merged, action);
          else {
            const names = action.chownFrom === undefined ? dest.merged : (await openSource(worker, inputs[action.chownFrom], sourceMounts, ctx)).root;
            await copyAction(dest.merged, action, await openSource(worker, inputs[action.source], sourceMounts, ctx), names, worker.expansionLimits ?? DEFAULT_EXPANSION_LIMITS, ctx);
          }
        }
        upper = dest.keepUpper();
      } finally {
        for (const m of sourceMounts) await m.release();
        await dest.release();
      }
      // Every file op is a layer, changed or not: BuildKit's FileOp always commits a new ref and
      // its exporter (exporter/containerimage/writer.go) keeps empty diffs, e.g. WORKDIR on an
      // existing directory.
      return commitUpperAsLayer(worker, upper, base, ctx, { keepEmpty: true });
    },
  };
}

async function openSource(worker: Worker, input: Result | undefined, mounts: Snapshot[], ctx: Ctx): Promise<CopySource> {
  if (!input) throw new BuildError('INTERNAL', 'copy source input missing');
  if (input.kind === 'dir') {
    return { root: input.path, kind: 'context', ignore: input.excludes.length ? PatternMatcher.compile(input.excludes) : undefined };
  }
  const m = await worker.mount(input.layers.map((l) => l.diffId), { readonly: true }, ctx);
  mounts.push(m);
  return { root: m.merged, kind: 'rootfs' };
}

async function mkdirAction(rootfs: string, action: MkdirAction): Promise<void> {
  const owner = action.chown ? await resolveChown(rootfs, action.chown) : undefined;
  await ensureDir(rootfs, action.path, action.mode, owner);
}

async function mkfileAction(rootfs: string, action: MkfileAction): Promise<void> {
  await ensureDir(rootfs, posix.dirname(action.path), 0o755, undefined);
  await atInRoot(rootfs, action.path, async (abs) => {
    await rm(abs, { force: true, recursive: true });
    await writeFile(abs, action.data, { flag: 'wx', mode: action.mode });
    await chmod(abs, action.mode); // the process umask must not narrow the requested mode
  });
}

/**
 * Creates `path` and missing parents inside the rootfs (symlinks resolved as in a chroot) and
 * returns its host path, for the copier to write below (it never follows a link it finds there).
 */
async function ensureDir(rootfs: string, path: string, mode: number, owner: Owner | undefined): Promise<string> {
  await mkdirInRoot(rootfs, path, mode, owner);
  return resolveInRoot(rootfs, path);
}

/**
 * Docker's COPY rules: a directory source copies its contents; the destination is a directory
 * when it ends in '/', when several sources are copied, or when it already is one; otherwise
 * it is the file's new name. ADD extracts local tar archives (gzip, bzip2, xz) into the destination.
 * --chown names are looked up in `namesRoot`'s /etc/passwd and /etc/group.
 */
async function copyAction(rootfs: string, action: CopyAction, src: CopySource, namesRoot: string, limits: ExpansionLimits, ctx: Ctx): Promise<void> {
  const owner = action.chown ? await resolveChown(namesRoot, action.chown) : undefined;
  const mode = action.chmod === undefined ? undefined : parseChmod(action.chmod);
  const exclude = action.excludes?.length ? PatternMatcher.compile(action.excludes) : undefined;
  // --parents: each source keeps its path below the destination, from its `/./` pivot on.
  const matches: { rel: string; abs: string; kept?: string }[] = [];
  let createDest = false;
  if (action.parents) {
    for (const p of action.srcPaths) {
      const found = await expandParentsSource(src, p);
      matches.push(...found.matches);
      createDest ||= found.copiesDir;
    }
  }
  else matches.push(...(await expandSources(src, action.srcPaths, action.allowWildcard)));
  const existing = await resolvedInRoot(rootfs, action.dest, (h) => stat(h)).catch(() => undefined);
  const destIsDir = action.dest.endsWith('/') || matches.length > 1 || !!existing?.isDirectory();
  const copier = new TreeCopier({ owner, mode, fromContext: src.kind === 'context', ignore: src.ignore, exclude }, ctx.signal);
  const parentOwner = owner;
  // BuildKit gives directories it creates for the destination an octal --chmod too (copy/chmod case).
  const parentMode = action.chmod !== undefined && /^[0-7]+$/.test(action.chmod) ? Number.parseInt(action.chmod, 8) : 0o755;

  if (createDest && matches.length === 0) await ensureDir(rootfs, action.dest, 0o755, parentOwner);
  for (const m of matches) {
    const st = await lstat(m.abs);
    const kept = m.kept;
    const dest = kept ? posix.join(action.dest, st.isDirectory() ? kept : posix.dirname(kept)) + '/' : action.dest;
    if (st.isDirectory()) {
      await copier.copyContents(m.abs, m.rel, await ensureDir(rootfs, dest, 0o755, parentOwner));
      continue;
    }
    if (exclude?.matches(basename(m.rel || m.abs))) continue;
    if (action.unpackArchives && st.isFile() && (await isArchiveFile(m.abs, ctx.signal))) {
      const dir = await ensureDir(rootfs, dest, 0o755, parentOwner);
      const what = `ADD ${m.rel || basename(m.abs)}`;
      await unpackArchive(createReadStream(m.abs), dir, { mode: 'flatten', limits, subject: what, compressedSize: st.size, ...(owner ? { owner } : {}) }, ctx.signal).catch((e: unknown) => {
        throw isCorruptArchiveError(e) ? new BuildError('INVALID_INSTRUCTION', `${what}: ${e.message}`, { cause: e }) : e;
      });
      continue;
    }
    // A destination that is a symlink, dangling too, is written where it points inside the rootfs
    // (BuildKit resolves it with RootPath), so the link stays and its target is made.
    const target = destIsDir || dest !== action.dest ? posix.join(dest, basename(m.rel || m.abs)) : await followInRoot(rootfs, dest);
    const parent = await ensureDir(rootfs, dirname(target), parentMode, parentOwner);
    await copier.copy(m.abs, m.rel, join(parent, basename(target)));
  }
}

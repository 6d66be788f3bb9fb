import { createReadStream, createWriteStream, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BuildError } from '../errors.js';
import { isArchiveFile } from '../oci/decompress.js';
import { DEFAULT_EXPANSION_LIMITS } from '../oci/layer/expansion-guard.js';
import { unpackArchive } from '../oci/layer/unpack-archive.js';
import { archiveMaxTime } from '../orchestrator/archive-max-time.js';

/** Where `-` (or remote) inputs were put on disk; `dispose()` removes them. */
export interface StdinInputs {
  readonly contextDir: string;
  readonly dockerfile?: string;
  /**
   * What SOURCE_DATE_EPOCH=context means for it: a git URL's commit time, an http one's
   * Last-Modified, else (as BuildKit) an archive's newest file time; undefined when none.
   */
  readonly sourceTime?: () => Promise<Date | undefined>;
  /** A git URL context: the repository (`URL#REF`) and the commit fetched, for provenance. */
  readonly gitSource?: { readonly uri: string; readonly commit: string };
  dispose(): Promise<void>;
  /** For a failed build: the error printed after the action still shows the Dockerfile snippet, so removal waits for exit. */
  disposeAtExit(): void;
}

/**
 * `tsbuild build -` and `-f -`, as docker does them: with context `-`, standard input is a tar
 * (plain or compressed) that becomes the context, or else a Dockerfile with an empty context;
 * with `-f -`, standard input is the Dockerfile. Both at once is a usage error. Standard input is
 * spooled to a private temp directory (never held in memory), which `dispose()` removes.
 */
export async function readStdinInputs(context: string, file: string | undefined, stdin: Readable, signal: AbortSignal): Promise<StdinInputs | undefined> {
  if (context !== '-' && file !== '-') return undefined;
  if (context === '-' && file === '-') throw new BuildError('USAGE', 'context and --file cannot both be read from standard input (-)');
  const dir = await mkdtemp(join(tmpdir(), 'tsbuild-stdin-'));
  const cleanup = {
    dispose: () => rm(dir, { recursive: true, force: true }),
    disposeAtExit: () => void process.once('exit', () => rmSync(dir, { recursive: true, force: true })),
  };
  const dispose = cleanup.dispose;
  try {
    // Named so errors read `…/Dockerfile:3` when standard input was the Dockerfile.
    const spool = join(dir, 'Dockerfile');
    await pipeline(stdin, createWriteStream(spool), { signal });
    if (file === '-') return { contextDir: context, dockerfile: spool, ...cleanup };
    return { ...(await contextFromSpool(spool, join(dir, 'context'), file, 'context "-": standard input', signal)), ...cleanup };
  } catch (e) {
    await dispose();
    throw e;
  }
}

/**
 * A downloaded or piped context (`spool`): a tar (plain or compressed) is unpacked into
 * `contextDir`, anything else is the Dockerfile of an empty context, as docker takes them.
 * `-f` names a file inside the tar. `what` names the source in errors.
 */
export async function contextFromSpool(
  spool: string,
  contextDir: string,
  file: string | undefined,
  what: string,
  signal: AbortSignal,
): Promise<{ contextDir: string; dockerfile?: string; sourceTime: () => Promise<Date | undefined> }> {
  await mkdir(contextDir);
  if (await isArchiveFile(spool, signal)) {
    const compressedSize = (await stat(spool)).size;
    await unpackArchive(createReadStream(spool), contextDir, { mode: 'flatten', limits: DEFAULT_EXPANSION_LIMITS, subject: what, compressedSize }, signal);
    // Read again only when SOURCE_DATE_EPOCH=context asks (the spool lives until dispose).
    const sourceTime = () => archiveMaxTime(createReadStream(spool), signal);
    return { contextDir, sourceTime, ...(file !== undefined ? { dockerfile: join(contextDir, file) } : {}) };
  }
  if ((await stat(spool)).size === 0) throw new BuildError('USAGE', `${what} is empty; give a tar of the context or a Dockerfile`);
  return { contextDir, dockerfile: spool, sourceTime: () => Promise.resolve(undefined) };
}

/**
 * `--build-arg-file FILE`: `KEY=VALUE` per line as docker's `--env-file` reads it; blank lines
 * and `#` comments skipped, a bare `KEY` taken from `env` (skipped when unset). Values are
 * literal (no quotes removed, no expansion). Errors name the file and line.
 */
export async function readBuildArgFile(path: string, env: NodeJS.ProcessEnv): Promise<Record<string, string>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new BuildError('USAGE', `--build-arg-file ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  const out: Record<string, string> = {};
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/^\s+/, '');
    if (line === '' || line.startsWith('#')) return;
    const eq = line.indexOf('=');
    const key = eq < 0 ? line.trimEnd() : line.slice(0, eq);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) throw new BuildError('USAGE', `${path}:${i + 1}: invalid build argument name ${JSON.stringify(key)}`);
    if (eq < 0) {
      if (env[key] !== undefined) out[key] = env[key]!;
    } else out[key] = line.slice(eq + 1);
  });
  return out;
}

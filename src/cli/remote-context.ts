import { execFile } from 'node:child_process';
import { createWriteStream, rmSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { BuildError, isAbortError } from '../errors.js';
import { resolveInRoot } from '../oci/in-root.js';
import { agentOptions, DEFAULT_HTTP_TIMEOUTS, transferFailure, type HttpTimeouts } from '../remote/http-timeouts.js';
import { contextFromSpool, type StdinInputs } from './stdin-input.js';
import { contextCommitTime } from '../orchestrator/git-commit-time.js';
import { httpDate } from '../orchestrator/url-last-modified.js';

const pexec = promisify(execFile);

/** What a build context argument names, as docker tells them apart. */
export function remoteContextKind(context: string): 'git' | 'http' | undefined {
  const [base] = context.split('#', 1);
  if (/^(git@|git:\/\/|ssh:\/\/)/.test(context) || /^github\.com\//.test(context)) return 'git';
  if (/^https?:\/\//i.test(context)) return /\.git$/.test(base!) ? 'git' : 'http';
  return undefined;
}

/**
 * A remote build context, fetched into a private temp directory (`dispose()` removes it):
 * - git (`git://`, `git@`, `ssh://`, `github.com/…`, an http(s) URL ending in `.git`), with
 *   docker's `#REF:SUBDIR` fragment: REF (branch, tag or commit; default the remote HEAD) is
 *   fetched shallowly with submodules, `.git` is left out, SUBDIR is the context;
 * - any other http(s) URL: a tarball (plain or compressed) that becomes the context, or else
 *   a Dockerfile with an empty context, as docker takes them.
 * `-f` names a file in that context. Undefined when `context` is a local path.
 */
export async function readRemoteContext(context: string, file: string | undefined, signal: AbortSignal, timeouts: HttpTimeouts = DEFAULT_HTTP_TIMEOUTS): Promise<StdinInputs | undefined> {
  const kind = remoteContextKind(context);
  if (!kind) return undefined;
  const dir = await mkdtemp(join(tmpdir(), 'tsbuild-remote-'));
  const cleanup = {
    dispose: () => rm(dir, { recursive: true, force: true }),
    disposeAtExit: () => void process.once('exit', () => rmSync(dir, { recursive: true, force: true })),
  };
  try {
    if (kind === 'http') {
      const spool = join(dir, 'Dockerfile');
      const lastModified = await download(context, spool, signal, timeouts);
      const fromSpool = await contextFromSpool(spool, join(dir, 'context'), file, `context ${context}`, signal);
      // BuildKit: the Last-Modified, else the archive's newest file time.
      return { ...fromSpool, ...(lastModified ? { sourceTime: () => Promise.resolve(lastModified) } : {}), ...cleanup };
    }
    const { contextDir, sourceTime, commit } = await gitCheckout(context, join(dir, 'repo'), signal);
    const { url, ref } = parseGitContext(context);
    return {
      contextDir,
      sourceTime: () => Promise.resolve(sourceTime),
      gitSource: { uri: ref ? `${url}#${ref}` : url, commit },
      ...(file !== undefined ? { dockerfile: join(contextDir, file) } : {}),
      ...cleanup,
    };
  } catch (e) {
    await cleanup.dispose();
    throw e;
  }
}

/** Downloads `url` to `dest`; returns its Last-Modified (BuildKit's SOURCE_DATE_EPOCH=context for an http context). */
async function download(url: string, dest: string, signal: AbortSignal, timeouts: HttpTimeouts): Promise<Date | undefined> {
  // undici's connect, headers and body-idle timers: a server that stalls fails the build, naming it.
  const { Agent, fetch } = await import('../remote/undici.js'); // on first use: most builds have a local context
  const agent = new Agent(agentOptions(timeouts));
  const failed = (e: unknown): never => {
    if (isAbortError(e) || signal.aborted || e instanceof BuildError) throw e;
    throw new BuildError('USAGE', `context ${url}: ${transferFailure(e, timeouts)}`, { cause: e });
  };
  try {
    const res = await fetch(url, { signal, redirect: 'follow', dispatcher: agent }).catch(failed);
    if (!res.ok || !res.body) {
      await res.body?.cancel().catch(() => undefined);
      throw new BuildError('USAGE', `context ${url}: the server answered ${res.status} ${res.statusText}`.trimEnd());
    }
    await pipeline(Readable.fromWeb(res.body as never), createWriteStream(dest), { signal }).catch(failed);
    return httpDate(res.headers.get('last-modified'));
  } finally {
    await agent.destroy().catch(() => undefined);
  }
}

/** Splits docker's `URL#REF:SUBDIR`. */
export function parseGitContext(context: string): { url: string; ref?: string; subdir?: string } {
  const hash = context.indexOf('#');
  const raw = hash < 0 ? context : context.slice(0, hash);
  const url = /^github\.com\//.test(raw) ? `https://${raw}` : raw;
  const fragment = hash < 0 ? '' : context.slice(hash + 1);
  const colon = fragment.indexOf(':');
  const ref = (colon < 0 ? fragment : fragment.slice(0, colon)) || undefined;
  const subdir = (colon < 0 ? '' : fragment.slice(colon + 1)) || undefined;
  return { url, ...(ref ? { ref } : {}), ...(subdir ? { subdir } : {}) };
}

async function gitCheckout(context: string, repo: string, signal: AbortSignal): Promise<{ contextDir: string; sourceTime: Date; commit: string }> {
  const { url, ref, subdir } = parseGitContext(context);
  // Never prompt for credentials: a CI step would hang; ssh keys and helpers still work.
  const env = { ...process.env, GIT_TERMINAL_PROMPT: '0' };
  const git = async (args: readonly string[], cwd = repo) => {
    try {
      return (await pexec('git', [...args], { cwd, env, signal, maxBuffer: 16 << 20 })).stdout;
    } catch (e) {
      if (isAbortError(e) || signal.aborted) throw e;
      const err = e as Error & { code?: string; stderr?: string };
      if (err.code === 'ENOENT') throw new BuildError('USAGE', 'a git build context needs git: install it (apt-get install git)');
      throw new BuildError('USAGE', `context ${context}: git ${args[0]} failed: ${(err.stderr ?? err.message).trim().split('\n').at(-1)}`, { cause: e });
    }
  };
  // A SHA-256 repository needs a SHA-256 clone: BuildKit asks ls-remote and goes by the length
  // of the ids (source/git/source.go). If ls-remote fails, the fetch reports why.
  const refs = await git(['ls-remote', '--', url], tmpdir()).catch(() => '');
  const sha256 = /^[0-9a-f]{64}\s/.test(refs);
  await git(['init', '-q', ...(sha256 ? ['--object-format=sha256'] : []), repo], tmpdir());
  await git(['remote', 'add', 'origin', url]);
  const wanted = ref ?? 'HEAD';
  // Shallow first; a server that refuses a commit id by itself gets a full fetch instead, and one
  // that cannot do shallow fetches (git's dumb http) a fetch without --depth, as BuildKit's
  // gitutil retries (util/gitutil/git_cli.go, argsNoDepth).
  await git(['fetch', '-q', '--depth', '1', '--no-tags', 'origin', wanted]).catch(async (e: unknown) => {
    const stderr = ((e as Error).cause as { stderr?: string } | undefined)?.stderr ?? '';
    if (/--depth|shallow/.test(stderr)) return git(['fetch', '-q', '--no-tags', 'origin', wanted]);
    if (!/^[0-9a-f]{7,40}$/.test(wanted)) throw e;
    await git(['fetch', '-q', '--no-tags', 'origin']);
  });
  await git(['checkout', '-q', '--detach', /^[0-9a-f]{7,40}$/.test(wanted) ? wanted : 'FETCH_HEAD']);
  if (await stat(join(repo, '.gitmodules')).catch(() => undefined)) await git(['submodule', 'update', '-q', '--init', '--recursive', '--depth', '1']);
  // SOURCE_DATE_EPOCH=context: the commit's time, read before .git goes.
  const sourceTime = await contextCommitTime(repo, signal);
  // The commit checked out (sha1 or sha256 object names): provenance's digest of this source.
  const commit = (await git(['rev-parse', 'HEAD'])).trim();
  // BuildKit leaves .git out of the context (unless asked to keep it).
  await rm(join(repo, '.git'), { recursive: true, force: true });
  if (!subdir) return { contextDir: repo, sourceTime, commit };
  // Resolved inside the checkout: a symlink in the repository never leads the context out of it.
  const dir = await resolveInRoot(repo, subdir).catch(() => undefined);
  if (!dir || !(await stat(dir)).isDirectory()) {
    throw new BuildError('USAGE', `context ${context}: ${subdir} is not a directory of the repository`);
  }
  return { contextDir: dir, sourceTime, commit };
}

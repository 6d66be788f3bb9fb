import { spawn } from 'node:child_process';
import { realpath, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { BuildError, isAbortError } from '../errors.js';
import { MAX_EPOCH } from '../frontend/source-date-epoch.js';

const TIMEOUT_MS = 15_000;
/** `%ct` is one number; anything longer is not an answer worth reading. */
const MAX_OUTPUT = 4096;

/**
 * SOURCE_DATE_EPOCH=context for a local context: the committer time of HEAD of the git work
 * tree the directory is in. BuildKit has no epoch for a local context at all; tsbuild asks git,
 * and a directory outside any work tree is a usage error rather than BuildKit's silence: the
 * build asked for a reproducible time, and quietly writing the wall clock instead would make
 * images that only look reproducible (a number, or no SOURCE_DATE_EPOCH, is the way out).
 */
export async function contextCommitTime(dir: string, signal: AbortSignal): Promise<Date> {
  const t = await gitCommitTime(dir, signal);
  if (t) return t;
  throw new BuildError('USAGE', `SOURCE_DATE_EPOCH=context: ${dir} is not in a git work tree`, {
    hint: 'context means the time of the last commit of the build context; give a number of seconds instead (--source-date-epoch N)',
  });
}

/**
 * HEAD's committer time of the work tree at or above `dir`; undefined when there is none.
 * The repository is hostile input (a context, a download): git runs with no system or global
 * config, an environment of our own (no GIT_DIR, pager or editor from ours), every repository
 * setting that can start a program (fsmonitor, hooks, pager, signature checks, transports for
 * a lazy fetch) overridden on the command line, which wins over the repository's own config,
 * and the ownership check waived only for that one work tree (root builds users' checkouts).
 */
export async function gitCommitTime(dir: string, signal: AbortSignal): Promise<Date | undefined> {
  const top = await workTreeTop(await realpath(dir));
  if (!top) return undefined;
  const args = [
    '--no-pager', '--no-optional-locks', '--no-replace-objects',
    ...['safe.directory=' + top, 'core.fsmonitor=false', 'core.hooksPath=/dev/null', 'core.pager=cat', 'log.showSignature=false', 'gpg.program=false', 'gpg.ssh.program=false', 'gpg.x509.program=false', 'protocol.allow=never', 'core.sshCommand=false'].flatMap((c) => ['-c', c]),
    '-C', top, 'log', '-1', '--no-show-signature', '--format=%ct', 'HEAD', '--',
  ];
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    LC_ALL: 'C',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_ATTR_NOSYSTEM: '1',
    GIT_PAGER: 'cat',
    PAGER: 'cat',
    GIT_TERMINAL_PROMPT: '0',
    GIT_OPTIONAL_LOCKS: '0',
    // Discovery stops at `top`: a broken .git there never lets git pick a parent's repository.
    ...(dirname(top) !== top ? { GIT_CEILING_DIRECTORIES: dirname(top) } : {}),
  };
  const out = await runGit(args, env, signal, top);
  const m = /^(\d{1,15})\n?$/.exec(out);
  if (!m || Number(m[1]) > MAX_EPOCH) throw new BuildError('USAGE', `SOURCE_DATE_EPOCH=context: git in ${top} gave no usable commit time (${JSON.stringify(out.slice(0, 80))})`);
  return new Date(Number(m[1]) * 1000);
}

/** The nearest of `dir` and its parents that holds a `.git` (directory, or gitfile of a worktree). */
async function workTreeTop(dir: string): Promise<string | undefined> {
  for (let d = dir; ; d = dirname(d)) {
    if (await stat(join(d, '.git')).then(() => true, () => false)) return d;
    if (dirname(d) === d) return undefined;
  }
}

function runGit(args: readonly string[], env: NodeJS.ProcessEnv, signal: AbortSignal, top: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, { env, stdio: ['ignore', 'pipe', 'pipe'], signal, timeout: TIMEOUT_MS, killSignal: 'SIGKILL' });
    let stdout = '';
    let stderr = '';
    let overflow = false;
    const take = (chunk: Buffer, into: 'out' | 'err') => {
      if (into === 'out') stdout += chunk.toString('utf8');
      else stderr += chunk.toString('utf8');
      if (stdout.length + stderr.length > MAX_OUTPUT && !overflow) {
        overflow = true;
        child.kill('SIGKILL');
      }
    };
    child.stdout.on('data', (c: Buffer) => take(c, 'out'));
    child.stderr.on('data', (c: Buffer) => take(c, 'err'));
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (isAbortError(e) || signal.aborted) reject(e);
      else if (e.code === 'ENOENT') reject(new BuildError('USAGE', 'SOURCE_DATE_EPOCH=context needs git: install it (apt-get install git)'));
      else reject(e);
    });
    child.on('close', (code, sig) => {
      if (signal.aborted) return reject(signal.reason);
      if (code === 0 && !overflow) return resolve(stdout);
      const why = overflow ? 'too much output' : sig ? `killed by ${sig} (timed out after ${TIMEOUT_MS / 1000}s?)` : (stderr.trim().split('\n').at(-1) || `exit code ${code}`);
      reject(new BuildError('USAGE', `SOURCE_DATE_EPOCH=context: git log in ${top} failed: ${why}`));
    });
  });
}

import { BuildError } from '../errors.js';
import { MAX_DOCKERFILE_BYTES } from '../frontend/ast.js';
import { readFileInOwnDir } from '../oci/in-root.js';
import { basename, dirname, join } from 'node:path';

/**
 * Reads the Dockerfile at `path`; a missing file named `Dockerfile` falls back to `dockerfile`
 * beside it, as BuildKit's dockerui (config.go) does. Returns the path actually read.
 */
export async function readDockerfileWithFallback(path: string): Promise<{ path: string; text: string }> {
  try {
    return { path, text: await readDockerfile(path) };
  } catch (e) {
    if (!(e instanceof BuildError) || e.code !== 'DOCKERFILE_NOT_FOUND' || basename(path) !== 'Dockerfile') throw e;
    const lower = join(dirname(path), 'dockerfile');
    try {
      return { path: lower, text: await readDockerfile(lower) };
    } catch {
      throw e;
    }
  }
}

/**
 * Reads the Dockerfile at `path` as UTF-8: resolved inside its own directory (a symlink in a
 * hostile checkout never makes tsbuild read, and print, a host file), a regular file only, and
 * never more than MAX_DOCKERFILE_BYTES: `-f /dev/zero`, a fifo or a huge file fail with an
 * error instead of blocking or exhausting memory.
 */
export async function readDockerfile(path: string): Promise<string> {
  try {
    return readFileInOwnDir(path, MAX_DOCKERFILE_BYTES);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EFBIG') {
      throw new BuildError('DOCKERFILE_SYNTAX', `Dockerfile ${path} is larger than the ${MAX_DOCKERFILE_BYTES >> 20} MiB allowed`, { hint: 'is -f pointing at the right file?' });
    }
    throw new BuildError('DOCKERFILE_NOT_FOUND', `failed to read Dockerfile ${path}: ${code === 'ENOENT' ? 'no such file' : code === 'EINVAL' ? 'not a regular file' : (e as Error).message}`, {
      hint: 'pass its path with -f, or run tsbuild in the directory that holds it',
    });
  }
}

/**
 * The text of a .dockerignore, read as the Dockerfile is; undefined when there is none. One
 * that exists but cannot be read is an error: ignoring it would send what it excludes.
 */
export function readIgnoreFile(path: string): string | undefined {
  try {
    return readFileInOwnDir(path, MAX_DOCKERFILE_BYTES);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new BuildError('USAGE', `cannot read ${path}: ${code === 'EFBIG' ? `larger than ${MAX_DOCKERFILE_BYTES >> 20} MiB` : code === 'EINVAL' ? 'not a regular file' : (e as Error).message}`);
  }
}

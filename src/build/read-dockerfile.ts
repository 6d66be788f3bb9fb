import { open } from 'node:fs/promises';
import { BuildError } from '../errors.js';
import { MAX_DOCKERFILE_BYTES } from '../frontend/ast.js';

/**
 * Reads the Dockerfile at `path` as UTF-8, never more than MAX_DOCKERFILE_BYTES + 1 bytes:
 * `-f /dev/zero`, a fifo or a huge file must fail with an error, not exhaust memory.
 */
export async function readDockerfile(path: string): Promise<string> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new BuildError('DOCKERFILE_NOT_FOUND', `failed to read Dockerfile ${path}: ${code === 'ENOENT' ? 'no such file' : (e as Error).message}`, {
      hint: 'pass its path with -f, or run tsbuild in the directory that holds it',
    });
  }
  try {
    const buf = Buffer.alloc(MAX_DOCKERFILE_BYTES + 1);
    let len = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, len, buf.length - len, null);
      if (bytesRead === 0) break;
      len += bytesRead;
      if (len > MAX_DOCKERFILE_BYTES) {
        throw new BuildError('DOCKERFILE_SYNTAX', `Dockerfile ${path} is larger than the ${MAX_DOCKERFILE_BYTES >> 20} MiB allowed`, { hint: 'is -f pointing at the right file?' });
      }
    }
    return buf.toString('utf8', 0, len);
  } catch (e) {
    if (e instanceof BuildError) throw e;
    throw new BuildError('DOCKERFILE_NOT_FOUND', `failed to read Dockerfile ${path}: ${(e as Error).message}`);
  } finally {
    await fh.close();
  }
}

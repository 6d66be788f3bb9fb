import { TarFormatError } from './tar/tar-entry.js';

/**
 * Whether `e` says the archive itself is bad: a malformed or truncated tar, a corrupt gzip
 * stream (zlib's Z_* codes), or a bzip2/xz/zstd child that rejected its input. Such errors
 * are the input's fault, so callers report them as a BuildError naming the archive; disk and
 * permission errors are not, and pass through.
 */
export function isCorruptArchiveError(e: unknown): e is Error {
  if (e instanceof TarFormatError) return true;
  if (!(e instanceof Error)) return false;
  const code = (e as NodeJS.ErrnoException).code;
  return (typeof code === 'string' && code.startsWith('Z_')) || / -dc failed /.test(e.message);
}

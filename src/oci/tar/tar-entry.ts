/**
 * One member of a tar archive, independent of the on-disk encoding (ustar, pax, GNU).
 *
 * We keep our own tar codec instead of tar-stream or node-tar: tar-stream decodes pax values
 * as UTF-8 strings and so mangles binary xattrs such as `security.capability`, and node-tar
 * hangs on fifos/devices and drops xattrs. Layers need all three to round-trip exactly.
 */
export interface TarEntry {
  /**
   * Slash-separated path as stored in the archive. The writer appends the trailing `/` of
   * directories itself; the reader returns paths without a trailing `/`.
   */
  path: string;
  type: TarEntryType;
  /** Permission bits plus setuid/setgid/sticky (07777); never the file-type bits. */
  mode: number;
  uid: number;
  gid: number;
  uname?: string;
  gname?: string;
  /** Body length in bytes; 0 for everything but regular files. */
  size: number;
  /** Modification time in seconds since the epoch; may be fractional. */
  mtime: number;
  /** Target of a symlink (as written) or of a hardlink (an archive path). */
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** Extended attributes with their raw value bytes (`SCHILY.xattr.<name>` in pax). */
  xattrs?: ReadonlyMap<string, Buffer>;
}

export type TarEntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';

/** ustar typeflag for each entry type. */
export const TYPEFLAG: Readonly<Record<TarEntryType, string>> = {
  file: '0',
  hardlink: '1',
  symlink: '2',
  char: '3',
  block: '4',
  dir: '5',
  fifo: '6',
};

/** Tar works in 512-byte blocks; bodies are zero-padded to a multiple of it. */
export const BLOCK = 512;

/** Zero bytes needed after `size` body bytes to reach the next block boundary. */
export function paddingFor(size: number): number {
  const rem = size % BLOCK;
  return rem === 0 ? 0 : BLOCK - rem;
}

/**
 * A malformed or unsupported archive. Callers that read user-supplied archives (ADD) turn it
 * into a BuildError with the instruction's location.
 */
export class TarFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TarFormatError';
  }
}

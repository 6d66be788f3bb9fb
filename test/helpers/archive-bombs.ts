import { spawnSync } from 'node:child_process';
import { open } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import { BLOCK, type TarEntry } from '../../src/oci/tar/tar-entry.js';
import { encodeHeaders } from '../../src/oci/tar/tar-writer.js';

export type BombCompression = 'gzip' | 'bzip2' | 'xz';

const MiB = 1024 * 1024;

function compress(kind: BombCompression, data: Buffer): Buffer {
  if (kind === 'gzip') return gzipSync(data, { level: 9 });
  const r = spawnSync(kind, ['-c', '-9'], { input: data, maxBuffer: 64 * MiB });
  if (r.status !== 0) throw new Error(`${kind} failed: ${r.stderr.toString()}`);
  return r.stdout;
}

function entry(path: string, size: number): TarEntry {
  return { path, type: 'file', mode: 0o644, uid: 0, gid: 0, size, mtime: 0 };
}

/**
 * Writes a compressed tar holding one file of `expandedMiB` MiB of zeros, without ever having
 * it whole: gzip, bzip2 and xz all decompress concatenated streams as one, so the file is the
 * compressed header, then one compressed MiB of zeros repeated, then the compressed end
 * blocks. 2 GiB comes out at ~2 MB (gzip), far less for bzip2 and xz. Returns its size.
 */
export async function writeZeroBomb(path: string, kind: BombCompression, expandedMiB: number): Promise<number> {
  const fh = await open(path, 'w');
  try {
    await fh.write(compress(kind, Buffer.concat(encodeHeaders(entry('zero', expandedMiB * MiB)))));
    const mib = compress(kind, Buffer.alloc(MiB));
    for (let i = 0; i < expandedMiB; i++) await fh.write(mib);
    await fh.write(compress(kind, Buffer.alloc(2 * BLOCK)));
    return (await fh.stat()).size;
  } finally {
    await fh.close();
  }
}

/** The bytes of a gzipped tar of `n` empty files (`f0`, `f1`, …): an inode bomb. */
export function manyEntriesTarGz(n: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < n; i++) parts.push(...encodeHeaders(entry(`f${i}`, 0)));
  parts.push(Buffer.alloc(2 * BLOCK));
  return gzipSync(Buffer.concat(parts));
}

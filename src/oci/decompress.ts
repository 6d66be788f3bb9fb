import { spawn } from 'node:child_process';
import { open } from 'node:fs/promises';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { ZstdDecompress } from './layer/zstd.js';

export type Compression = 'gzip' | 'bzip2' | 'xz' | 'zstd' | 'none';

/** Identifies the compression of a stream from its first bytes (6 are enough). */
export function compressionOf(head: Buffer): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 3 && head.toString('latin1', 0, 3) === 'BZh') return 'bzip2';
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return 'none';
}

/**
 * Whether a 512-byte block is a tar header: a valid checksum, and the ustar magic at 257 or
 * (v7 archives) no magic at all. Used on the first block of a decompressed stream.
 */
export function isTarHeader(block: Buffer): boolean {
  if (block.length < 512) return false;
  const stored = block.toString('latin1', 148, 156).replace(/\0.*$/s, '').trim();
  if (!/^[0-7]+$/.test(stored)) return false;
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i]!;
  if (parseInt(stored, 8) !== sum) return false;
  const magic = block.toString('latin1', 257, 262);
  return magic === 'ustar' || block.subarray(257, 265).every((b) => b === 0);
}

/**
 * Docker's quick check on a file's first block: compressed in a known format, or a tar
 * header. Cheap but may say yes to a compressed non-tar; `isArchiveFile` looks inside.
 */
export function isArchive(first512Bytes: Buffer): boolean {
  return compressionOf(first512Bytes) !== 'none' || isTarHeader(first512Bytes);
}

/**
 * Returns the decompressed form of `input`, sniffing its magic bytes: gzip through zlib; zstd
 * through libzstd (layer/zstd.ts: zstd layers are common, so in-process); bzip2 and xz by
 * spawning `bzip2 -dc`, `xz -dc` (Node's zlib has neither in Node 20, and they only matter for
 * ADD of local archives, so a child process beats a dependency); anything else passes through
 * unchanged. Ownership of `input` moves to the
 * result: destroying the result destroys `input` (and kills a decompressor).
 */
export async function decompressStream(input: Readable, signal?: AbortSignal): Promise<Readable> {
  const it = input[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const headParts: Buffer[] = [];
  let headLen = 0;
  let ended = false;
  while (headLen < 6) {
    const r = await it.next();
    if (r.done) {
      ended = true;
      break;
    }
    headParts.push(r.value);
    headLen += r.value.length;
  }
  const head = Buffer.concat(headParts);
  // Re-assemble the stream we partly consumed: the peeked bytes, then the rest.
  const whole = Readable.from(
    (async function* () {
      if (head.length) yield head;
      if (ended) return;
      for (;;) {
        const r = await it.next();
        if (r.done) return;
        yield r.value;
      }
    })(),
    { objectMode: false },
  );
  whole.once('close', () => void it.return?.());

  const kind = compressionOf(head);
  switch (kind) {
    case 'none':
      return whole;
    case 'gzip': {
      // zlib's default 16 KiB output chunks cost a third of a big layer's read in callbacks and GC.
      const gunzip = createGunzip({ chunkSize: 256 << 10 });
      pipeline(whole, gunzip, signal ? { signal } : {}).catch(() => undefined); // errors surface on gunzip
      return gunzip;
    }
    case 'zstd': {
      // Layers (pulled zstd images, zstd caches) and ADD archives alike: libzstd in-process.
      const unzstd = new ZstdDecompress();
      pipeline(whole, unzstd, signal ? { signal } : {}).catch(() => undefined); // errors surface on unzstd
      return unzstd;
    }
    case 'bzip2':
    case 'xz':
      return spawnDecompressor(kind, whole, signal);
    default: {
      const never: never = kind;
      throw new Error(`unknown compression ${String(never)}`);
    }
  }
}

function spawnDecompressor(tool: 'bzip2' | 'xz', input: Readable, signal?: AbortSignal): Readable {
  const child = spawn(tool, ['-dc'], { stdio: ['pipe', 'pipe', 'pipe'], signal });
  const out = new PassThrough();
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    if (stderr.length < 4096) stderr += d.toString();
  });
  // A decompressor that dies early closes stdin under us: its exit status tells the story.
  child.stdin.on('error', () => undefined);
  input.on('error', (e) => out.destroy(e));
  input.pipe(child.stdin);
  child.stdout.pipe(out, { end: false });
  child.on('error', (e) => out.destroy(new Error(`${tool} -dc could not run: ${e.message}`, { cause: e })));
  child.on('close', (code, sig) => {
    if (code === 0) out.end();
    else out.destroy(new Error(`${tool} -dc failed (${sig ?? `exit ${code}`}): ${stderr.trim() || 'corrupt input?'}`));
  });
  out.on('close', () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    input.destroy();
  });
  return out;
}

/**
 * Whether the file at `path` is a tar archive, compressed (gzip, bzip2, xz, zstd) or not:
 * what ADD uses to decide between extracting and copying a local source.
 */
export async function isArchiveFile(path: string, signal?: AbortSignal): Promise<boolean> {
  const fh = await open(path, 'r');
  const stream = await decompressStream(fh.createReadStream(), signal);
  try {
    const block = await readPrefix(stream, 512);
    return isTarHeader(block);
  } catch {
    return false; // a corrupt "compressed" file is not an archive: ADD copies it as is
  } finally {
    stream.destroy();
    await fh.close().catch(() => undefined);
  }
}

async function readPrefix(stream: Readable, n: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let len = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    parts.push(chunk);
    len += chunk.length;
    if (len >= n) break;
  }
  return Buffer.concat(parts).subarray(0, n);
}

import type { Readable } from 'node:stream';
import { ByteSource, TruncatedError } from './byte-source.js';
import { BLOCK, TarFormatError, paddingFor, type TarEntry, type TarEntryType } from './tar-entry.js';

/** Pax/GNU meta headers larger than this are refused rather than buffered. */
const MAX_META_SIZE = 64 * 1024 * 1024;
const BODY_CHUNK = 256 * 1024;

/** One archive member as `readTar` yields it. */
export interface TarMember {
  readonly entry: TarEntry;
  /**
   * The member's data (`entry.size` bytes; empty for non-files). Valid only until the next
   * iteration of `readTar`: what the consumer leaves unread is skipped then.
   */
  readonly body: AsyncIterable<Buffer>;
}

/**
 * Streams the members of a tar archive (ustar, pax with `x` and `g` headers, GNU
 * longname/longlink, v7, base-256 numbers), one at a time, without buffering file data.
 *
 * Paths are returned as stored (no normalization) minus trailing slashes; pax `path`/`linkpath`
 * and GNU `L`/`K` names override the header fields. Xattrs come from `SCHILY.xattr.*` records
 * as raw bytes. A header with a bad checksum, a truncated archive, sparse files and unknown
 * entry types throw `TarFormatError`. After the end-of-archive blocks the rest of the input is
 * drained (registries pad archives), so a producer blocked on backpressure (or hashing the
 * whole blob) can finish; `maxTrailingBytes` bounds that for inputs that may never end.
 * `signal` ends the wait for input even when the source never yields.
 */
export async function* readTar(source: AsyncIterable<Buffer> | Readable, signal?: AbortSignal, opts: { maxTrailingBytes?: number } = {}): AsyncGenerator<TarMember> {
  const src = new ByteSource(source as AsyncIterable<Buffer>, signal);
  let global = new Map<string, Buffer>();
  let local = new Map<string, Buffer>();
  let longName: Buffer | undefined;
  let longLink: Buffer | undefined;
  let member = 0;
  // Bytes of the current member's body (+ padding) not yet consumed.
  let bodyLeft = 0;
  let padLeft = 0;
  let finished = false;

  try {
    for (;;) {
      signal?.throwIfAborted();
      member++;
      await src.skip(bodyLeft + padLeft);
      bodyLeft = padLeft = 0;

      const header = await src.readExact(BLOCK);
      if (!header) break; // no end blocks: tolerated, as GNU tar does
      if (isZero(header)) {
        finished = true;
        break;
      }
      verifyChecksum(header);
      const h = parseHeader(header);
      if (h.typeflag === 'x' || h.typeflag === 'g' || h.typeflag === 'L' || h.typeflag === 'K') {
        const metaSize = h.size;
        if (metaSize > MAX_META_SIZE) throw new TarFormatError(`tar: ${h.typeflag} header of ${metaSize} bytes is too large`);
        const read = metaSize === 0 ? Buffer.alloc(0) : await src.readExact(metaSize);
        if (!read) throw new TruncatedError(metaSize, 0);
        const data = Buffer.from(read);
        await src.skip(paddingFor(metaSize));
        if (h.typeflag === 'x') local = parsePax(data, local);
        else if (h.typeflag === 'g') global = parsePax(data, global);
        else if (h.typeflag === 'L') longName = cString(data);
        else longLink = cString(data);
        continue;
      }

      const size = paxNumber(local, 'size') ?? paxNumber(global, 'size') ?? h.size;
      const rec = (key: string): Buffer | undefined => local.get(key) ?? global.get(key);
      for (const k of [...global.keys(), ...local.keys()]) {
        if (k.startsWith('GNU.sparse.')) throw new TarFormatError(`tar: ${h.name}: GNU sparse files are not supported`);
      }
      const rawPath = rec('path')?.toString('utf8') ?? longName?.toString('utf8') ?? h.name;
      const type = entryType(h.typeflag, rawPath);
      if (type === undefined) {
        if (h.typeflag === 'V') {
          // GNU volume label: not a file.
          bodyLeft = size;
          padLeft = paddingFor(size);
          local = new Map();
          longName = longLink = undefined;
          continue;
        }
        throw new TarFormatError(
          h.typeflag === 'S'
            ? `tar: ${rawPath}: GNU sparse files are not supported`
            : `tar: ${rawPath}: unsupported entry type ${JSON.stringify(h.typeflag)}`,
        );
      }
      // Only regular files carry data; for the other types the size field is meaningless.
      const dataSize = type === 'file' ? size : 0;
      const xattrs = new Map<string, Buffer>();
      for (const m of [global, local]) {
        for (const [k, v] of m) if (k.startsWith('SCHILY.xattr.')) xattrs.set(k.slice('SCHILY.xattr.'.length), v);
      }
      const uname = rec('uname')?.toString('utf8') ?? h.uname;
      const gname = rec('gname')?.toString('utf8') ?? h.gname;
      const linkname = rec('linkpath')?.toString('utf8') ?? longLink?.toString('utf8') ?? h.linkname;
      const entry: TarEntry = {
        path: rawPath.length > 1 ? rawPath.replace(/\/+$/, '') || '/' : rawPath,
        type,
        mode: h.mode & 0o7777,
        uid: paxNumber(local, 'uid') ?? paxNumber(global, 'uid') ?? h.uid,
        gid: paxNumber(local, 'gid') ?? paxNumber(global, 'gid') ?? h.gid,
        size: dataSize,
        mtime: paxTime(rec('mtime')) ?? h.mtime,
        ...(uname ? { uname } : {}),
        ...(gname ? { gname } : {}),
        ...(linkname && (type === 'symlink' || type === 'hardlink') ? { linkname } : {}),
        ...(type === 'char' || type === 'block' ? { devmajor: h.devmajor, devminor: h.devminor } : {}),
        ...(xattrs.size > 0 ? { xattrs } : {}),
      };
      local = new Map();
      longName = longLink = undefined;
      bodyLeft = dataSize;
      padLeft = paddingFor(dataSize);

      const mine = member;
      const body: AsyncIterable<Buffer> = {
        async *[Symbol.asyncIterator]() {
          while (mine === member && bodyLeft > 0) {
            signal?.throwIfAborted();
            const chunk = await src.readSome(Math.min(bodyLeft, BODY_CHUNK));
            bodyLeft -= chunk.length;
            yield chunk;
          }
        },
      };
      yield { entry, body };
    }
    if (finished) await src.drain(opts.maxTrailingBytes ?? Infinity);
  } finally {
    await src.close();
  }
}

interface RawHeader {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname: string;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
}

function parseHeader(b: Buffer): RawHeader {
  const magic = b.toString('latin1', 257, 263);
  const version = b.toString('latin1', 263, 265);
  const name = cString(b.subarray(0, 100)).toString('utf8');
  // Only POSIX ustar has a prefix field; old GNU keeps atime/ctime in that area.
  const isPosix = magic === 'ustar\0' && version === '00';
  const isGnu = magic === 'ustar ' && version === ' \0';
  const prefix = isPosix ? cString(b.subarray(345, 500)).toString('utf8') : '';
  const hasUstar = isPosix || isGnu;
  const typeflag = b[156] === 0 ? '\0' : String.fromCharCode(b[156]!);
  return {
    name: prefix ? `${prefix}/${name}` : name,
    mode: parseNumber(b, 100, 8, 'mode'),
    uid: parseNumber(b, 108, 8, 'uid'),
    gid: parseNumber(b, 116, 8, 'gid'),
    size: parseNumber(b, 124, 12, 'size'),
    mtime: parseNumber(b, 136, 12, 'mtime'),
    typeflag,
    linkname: cString(b.subarray(157, 257)).toString('utf8'),
    uname: hasUstar ? cString(b.subarray(265, 297)).toString('utf8') : '',
    gname: hasUstar ? cString(b.subarray(297, 329)).toString('utf8') : '',
    devmajor: hasUstar ? parseNumber(b, 329, 8, 'devmajor') : 0,
    devminor: hasUstar ? parseNumber(b, 337, 8, 'devminor') : 0,
  };
}

/** Octal (NUL/space padded) or GNU base-256 (high bit of the first byte set). */
function parseNumber(b: Buffer, off: number, len: number, field: string): number {
  const f = b.subarray(off, off + len);
  if (f[0]! & 0x80) {
    const negative = f[0] === 0xff;
    let v = negative ? 0xff : f[0]! & 0x7f;
    for (let i = 1; i < f.length; i++) v = v * 256 + f[i]!;
    // Negative values are two's complement over the whole field.
    if (negative) v = v - 2 ** (8 * f.length);
    if (!Number.isSafeInteger(v)) throw new TarFormatError(`tar: ${field} field out of range`);
    return v;
  }
  const s = f.toString('latin1').replace(/\0.*$/s, '').trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new TarFormatError(`tar: invalid ${field} field ${JSON.stringify(s)} in header`);
  return parseInt(s, 8);
}

function verifyChecksum(b: Buffer): void {
  const stored = b.toString('latin1', 148, 156).replace(/\0.*$/s, '').trim();
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const byte = i >= 148 && i < 156 ? 0x20 : b[i]!;
    unsigned += byte;
    signed += byte > 127 ? byte - 256 : byte;
  }
  // Some old tars summed signed chars; accept both, as GNU tar does.
  const want = /^[0-7]+$/.test(stored) ? parseInt(stored, 8) : NaN;
  if (want !== unsigned && want !== signed) {
    throw new TarFormatError(`tar: header checksum mismatch (stored ${JSON.stringify(stored)}, computed ${unsigned.toString(8)}): corrupt or not a tar archive`);
  }
}

function entryType(flag: string, path: string): TarEntryType | undefined {
  switch (flag) {
    case '0':
    case '7':
      return 'file';
    case '\0':
      return path.endsWith('/') ? 'dir' : 'file'; // v7 marked directories by the slash
    case '1':
      return 'hardlink';
    case '2':
      return 'symlink';
    case '3':
      return 'char';
    case '4':
      return 'block';
    case '5':
      return 'dir';
    case '6':
      return 'fifo';
    default:
      return undefined;
  }
}

/**
 * Parses `<len> <key>=<value>\n` records into a copy of `into`. Values stay raw bytes (xattrs
 * are binary). An empty value deletes the key, per POSIX, except for xattrs, which may be empty.
 */
function parsePax(data: Buffer, into: ReadonlyMap<string, Buffer>): Map<string, Buffer> {
  const out = new Map(into);
  let pos = 0;
  while (pos < data.length) {
    if (data[pos] === 0) break; // trailing NUL padding written by some tars
    const sp = data.indexOf(0x20, pos);
    const lenStr = sp < 0 ? '' : data.toString('latin1', pos, sp);
    const len = /^[0-9]+$/.test(lenStr) ? parseInt(lenStr, 10) : NaN;
    if (!(len > 0) || pos + len > data.length || data[pos + len - 1] !== 0x0a) {
      throw new TarFormatError('tar: malformed pax extended header record');
    }
    const rec = data.subarray(sp + 1, pos + len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq <= 0) throw new TarFormatError('tar: malformed pax extended header record (no key)');
    const key = rec.toString('utf8', 0, eq);
    const value = Buffer.from(rec.subarray(eq + 1));
    if (value.length === 0 && !key.startsWith('SCHILY.xattr.')) out.delete(key);
    else out.set(key, value);
    pos += len;
  }
  return out;
}

function paxNumber(m: ReadonlyMap<string, Buffer>, key: string): number | undefined {
  const v = m.get(key)?.toString('latin1');
  if (v === undefined) return undefined;
  if (!/^[0-9]+$/.test(v)) throw new TarFormatError(`tar: invalid pax ${key} ${JSON.stringify(v)}`);
  return parseInt(v, 10);
}

function paxTime(v: Buffer | undefined): number | undefined {
  if (v === undefined) return undefined;
  const s = v.toString('latin1');
  if (!/^-?[0-9]+(\.[0-9]*)?$/.test(s)) throw new TarFormatError(`tar: invalid pax mtime ${JSON.stringify(s)}`);
  return Number(s);
}

/** The bytes up to the first NUL. */
function cString(b: Buffer): Buffer {
  const i = b.indexOf(0);
  return i < 0 ? b : b.subarray(0, i);
}

function isZero(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

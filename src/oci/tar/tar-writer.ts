import { Readable } from 'node:stream';
import { BLOCK, TYPEFLAG, paddingFor, type TarEntry } from './tar-entry.js';

const ZERO_BLOCK = Buffer.alloc(BLOCK);
/** Bytes of small pieces gathered into one pushed chunk. */
const BATCH = 64 * 1024;
const MAX_OCTAL_7 = 0o7777777; // 8-byte fields: uid, gid, devmajor, devminor
const MAX_OCTAL_11 = 0o77777777777; // 12-byte fields: size, mtime

/**
 * Writes a POSIX pax/ustar archive to `stream`, one entry at a time.
 *
 * Contract:
 * - `add()` resolves once the header and body have been handed to `stream`, waiting whenever
 *   the consumer applies backpressure, so memory stays bounded by the stream's buffer. Small
 *   pieces are gathered into 64 KiB chunks first, so up to 64 KiB of an entry may reach
 *   `stream` only with a later `add()` or `finish()`.
 *   Calls are serialized; the caller may still await each one.
 * - Fields that don't fit ustar (paths longer than the 100+155 byte split, linknames over 100
 *   bytes, ids over 2097151, sizes over 8 GiB, fractional or negative mtimes, long user/group
 *   names) and all xattrs go into a pax `x` header before the entry. Xattr values are written
 *   as raw bytes (`SCHILY.xattr.<name>`), as GNU tar and BuildKit read them.
 * - Output is a pure function of the entries and bodies: no clock, no host names, xattrs
 *   sorted by name.
 * - `finish()` writes the two zero end blocks and ends `stream`.
 */
export class TarWriter {
  /** The archive bytes. The caller owns consuming it (pipe it somewhere or read it). */
  readonly stream: Readable;
  #wake: (() => void) | undefined;
  /** Small pieces gathered for one push (see #push). */
  #batch = Buffer.allocUnsafe(BATCH);
  #batchLength = 0;
  #tail: Promise<void> = Promise.resolve();
  #finished = false;

  constructor() {
    this.stream = new Readable({
      highWaterMark: 64 * 1024,
      read: () => {
        const wake = this.#wake;
        this.#wake = undefined;
        wake?.();
      },
    });
    // A destroyed consumer must not leave add() waiting forever for a read() that never comes.
    this.stream.once('close', () => {
      const wake = this.#wake;
      this.#wake = undefined;
      wake?.();
    });
  }

  /**
   * Appends one entry. `body` is required for regular files with `size > 0` and must supply
   * exactly `entry.size` bytes; it is ignored for other types.
   */
  add(entry: TarEntry, body?: Readable | Buffer | Uint8Array): Promise<void> {
    if (this.#finished) return Promise.reject(new Error('TarWriter.add() after finish()'));
    const run = this.#tail.then(() => this.#add(entry, body));
    this.#tail = run.catch(() => undefined);
    return run;
  }

  /** Writes the end-of-archive marker and ends the stream. */
  finish(): Promise<void> {
    if (this.#finished) return this.#tail;
    this.#finished = true;
    const run = this.#tail.then(async () => {
      await this.#push(ZERO_BLOCK);
      await this.#push(ZERO_BLOCK);
      await this.#flush();
      this.stream.push(null);
    });
    this.#tail = run.catch(() => undefined);
    return run;
  }

  /** Aborts the archive: the stream errors with `err`, pending adds reject. */
  destroy(err: Error): void {
    this.#finished = true;
    this.stream.destroy(err);
  }

  async #add(entry: TarEntry, body: Readable | Buffer | Uint8Array | undefined): Promise<void> {
    const size = entry.type === 'file' ? entry.size : 0;
    for (const h of encodeHeaders(entry)) await this.#push(h);
    if (size === 0) {
      if (body instanceof Readable) body.resume();
      return;
    }
    if (body === undefined) throw new Error(`tar: ${entry.path}: no body for a ${size}-byte file`);
    let written = 0;
    if (body instanceof Readable) {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        written += chunk.length;
        if (written > size) {
          body.destroy();
          throw new Error(`tar: ${entry.path}: body is longer than the declared ${size} bytes (file changed while archiving?)`);
        }
        await this.#push(chunk);
      }
    } else {
      written = body.length;
      if (written === size) await this.#push(Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.length));
    }
    if (written !== size) {
      throw new Error(`tar: ${entry.path}: body has ${written} bytes, header declared ${size} (file changed while archiving?)`);
    }
    const pad = paddingFor(size);
    if (pad > 0) await this.#push(ZERO_BLOCK.subarray(0, pad));
  }

  /**
   * Queues `chunk` for the stream. Small pieces (headers, padding, small bodies) are gathered
   * into one buffer of {@link BATCH} bytes before they are pushed: each chunk costs the
   * consumer a round trip (a zlib thread-pool job per chunk), and a layer of small files is
   * mostly small pieces. Large chunks go out as they are, after what was gathered.
   */
  async #push(chunk: Buffer): Promise<void> {
    if (this.stream.destroyed) throw new Error('tar: output stream was destroyed');
    if (chunk.length >= BATCH / 2) {
      await this.#flush();
      await this.#pushNow(chunk);
      return;
    }
    if (this.#batchLength + chunk.length > BATCH) await this.#flush();
    chunk.copy(this.#batch, this.#batchLength);
    this.#batchLength += chunk.length;
  }

  /** Pushes what #push gathered; a new batch buffer, since the stream keeps the pushed one. */
  async #flush(): Promise<void> {
    if (this.#batchLength === 0) return;
    const full = this.#batch.subarray(0, this.#batchLength);
    this.#batch = Buffer.allocUnsafe(BATCH);
    this.#batchLength = 0;
    await this.#pushNow(full);
  }

  async #pushNow(chunk: Buffer): Promise<void> {
    if (this.stream.destroyed) throw new Error('tar: output stream was destroyed');
    if (this.stream.push(chunk)) return;
    await new Promise<void>((resolve) => {
      this.#wake = resolve;
    });
  }
}

/** The header block(s) for one entry: an optional pax `x` header + body, then the ustar header. */
export function encodeHeaders(entry: TarEntry): Buffer[] {
  const path = entry.type === 'dir' && !entry.path.endsWith('/') ? `${entry.path}/` : entry.path;
  const size = entry.type === 'file' ? entry.size : 0;
  const pax: Array<[string, Buffer]> = [];

  const pathBytes = Buffer.from(path, 'utf8');
  const split = splitUstarPath(pathBytes);
  if (!split) pax.push(['path', pathBytes]);
  const linkBytes = Buffer.from(entry.linkname ?? '', 'utf8');
  if (linkBytes.length > 100) pax.push(['linkpath', linkBytes]);
  if (!fitsOctal(size, MAX_OCTAL_11)) pax.push(['size', Buffer.from(String(size))]);
  if (!fitsOctal(entry.uid, MAX_OCTAL_7)) pax.push(['uid', Buffer.from(String(entry.uid))]);
  if (!fitsOctal(entry.gid, MAX_OCTAL_7)) pax.push(['gid', Buffer.from(String(entry.gid))]);
  const uname = Buffer.from(entry.uname ?? '', 'utf8');
  const gname = Buffer.from(entry.gname ?? '', 'utf8');
  if (uname.length > 32) pax.push(['uname', uname]);
  if (gname.length > 32) pax.push(['gname', gname]);
  if (!fitsOctal(entry.mtime, MAX_OCTAL_11)) pax.push(['mtime', Buffer.from(formatPaxTime(entry.mtime))]);
  if (entry.xattrs) {
    for (const name of [...entry.xattrs.keys()].sort()) pax.push([`SCHILY.xattr.${name}`, entry.xattrs.get(name)!]);
  }
  for (const n of [entry.devmajor ?? 0, entry.devminor ?? 0]) {
    if (!fitsOctal(n, MAX_OCTAL_7)) throw new Error(`tar: ${entry.path}: device number ${n} does not fit a tar header`);
  }

  const out: Buffer[] = [];
  if (pax.length > 0) {
    const body = encodePaxRecords(pax);
    out.push(
      ustarHeader({
        name: paxHeaderName(pathBytes),
        prefix: Buffer.alloc(0),
        mode: 0o644,
        uid: 0,
        gid: 0,
        size: body.length,
        mtime: 0,
        typeflag: 'x',
        linkname: Buffer.alloc(0),
        uname: Buffer.alloc(0),
        gname: Buffer.alloc(0),
        devmajor: 0,
        devminor: 0,
      }),
    );
    out.push(body);
    const pad = paddingFor(body.length);
    if (pad > 0) out.push(Buffer.alloc(pad));
  }
  out.push(
    ustarHeader({
      name: split ? split.name : pathBytes.subarray(0, 100),
      prefix: split ? split.prefix : Buffer.alloc(0),
      mode: entry.mode & 0o7777,
      uid: clampOctal(entry.uid, MAX_OCTAL_7),
      gid: clampOctal(entry.gid, MAX_OCTAL_7),
      size: clampOctal(size, MAX_OCTAL_11),
      mtime: clampOctal(Math.floor(entry.mtime), MAX_OCTAL_11),
      typeflag: TYPEFLAG[entry.type],
      linkname: linkBytes.subarray(0, 100),
      uname: uname.length > 32 ? Buffer.alloc(0) : uname,
      gname: gname.length > 32 ? Buffer.alloc(0) : gname,
      devmajor: entry.devmajor ?? 0,
      devminor: entry.devminor ?? 0,
    }),
  );
  return out;
}

interface UstarFields {
  name: Buffer;
  prefix: Buffer;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname: Buffer;
  uname: Buffer;
  gname: Buffer;
  devmajor: number;
  devminor: number;
}

function ustarHeader(f: UstarFields): Buffer {
  const h = Buffer.alloc(BLOCK);
  f.name.copy(h, 0);
  writeOctal(h, 100, 8, f.mode);
  writeOctal(h, 108, 8, f.uid);
  writeOctal(h, 116, 8, f.gid);
  writeOctal(h, 124, 12, f.size);
  writeOctal(h, 136, 12, f.mtime);
  h.fill(0x20, 148, 156); // checksum is computed with its own field as spaces
  h.write(f.typeflag, 156, 'latin1');
  f.linkname.copy(h, 157);
  h.write('ustar\u000000', 257, 'latin1');
  f.uname.copy(h, 265);
  f.gname.copy(h, 297);
  writeOctal(h, 329, 8, f.devmajor);
  writeOctal(h, 337, 8, f.devminor);
  f.prefix.copy(h, 345);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += h[i]!;
  h.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 'latin1');
  return h;
}

/** Zero-padded octal followed by NUL, filling `width` bytes. */
function writeOctal(h: Buffer, offset: number, width: number, n: number): void {
  h.write(`${n.toString(8).padStart(width - 1, '0')}\u0000`, offset, 'latin1');
}

function fitsOctal(n: number, max: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= max;
}

function clampOctal(n: number, max: number): number {
  return n < 0 || !Number.isFinite(n) ? 0 : Math.min(n, max);
}

/** Splits a path into ustar prefix (≤155 bytes) and name (≤100 bytes) at a slash, if possible. */
function splitUstarPath(p: Buffer): { prefix: Buffer; name: Buffer } | undefined {
  if (p.length <= 100) return { prefix: Buffer.alloc(0), name: p };
  if (p.length > 256) return undefined;
  // The name part must be non-empty: pick the first slash that leaves ≤100 bytes after it.
  for (let i = Math.max(0, p.length - 101); i <= Math.min(155, p.length - 2); i++) {
    if (p[i] === 0x2f && i > 0) return { prefix: p.subarray(0, i), name: p.subarray(i + 1) };
  }
  return undefined;
}

/** `PaxHeaders.0/<basename>` as Go's archive/tar names them; only informational. */
function paxHeaderName(path: Buffer): Buffer {
  const s = path.toString('utf8').replace(/\/+$/, '');
  const base = s.slice(s.lastIndexOf('/') + 1);
  return Buffer.from(`PaxHeaders.0/${base}`, 'utf8').subarray(0, 100);
}

/** Pax records are `<len> <key>=<value>\n` with len counting the whole record in bytes. */
function encodePaxRecords(records: ReadonlyArray<readonly [string, Buffer]>): Buffer {
  const parts: Buffer[] = [];
  for (const [key, value] of records) {
    const rest = Buffer.byteLength(key) + value.length + 3; // ' ', '=', '\n'
    let len = rest + 1;
    while (String(len).length + rest !== len) len = String(len).length + rest;
    parts.push(Buffer.from(`${len} ${key}=`, 'utf8'), value, Buffer.from('\n'));
  }
  return Buffer.concat(parts);
}

/** Seconds with up to 9 fractional digits and no trailing zeros, as pax expects. */
function formatPaxTime(t: number): string {
  if (Number.isInteger(t)) return String(t);
  return t.toFixed(9).replace(/0+$/, '').replace(/\.$/, '');
}

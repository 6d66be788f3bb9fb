import { createHash, type Hash } from 'node:crypto';
import { Transform } from 'node:stream';

/** A content digest, always `sha256:<64 lowercase hex>`. Branded so plain strings can't pass. */
export type Digest = `sha256:${string}` & { readonly __brand: 'Digest' };

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

export function isDigest(s: string): s is Digest {
  return DIGEST_RE.test(s);
}

/** Parses an untrusted string (manifest field, file name) into a Digest, or throws. */
export function parseDigest(s: string): Digest {
  if (!isDigest(s)) throw new Error(`invalid digest ${JSON.stringify(s)}: only sha256:<64 hex> is supported`);
  return s;
}

export function digestFromHex(hex: string): Digest {
  return parseDigest(`sha256:${hex}`);
}

/** The hex part, used for file names under blobs/sha256/. */
export function digestHex(d: Digest): string {
  return d.slice(7);
}

export function sha256(data: string | Uint8Array): Digest {
  return digestFromHex(createHash('sha256').update(data).digest('hex'));
}

/** A running sha256 that also counts bytes; for digesting streams as they pass. */
export class Digester {
  readonly #hash: Hash = createHash('sha256');
  #size = 0;
  update(chunk: Uint8Array): void {
    this.#hash.update(chunk);
    this.#size += chunk.length;
  }
  get size(): number {
    return this.#size;
  }
  digest(): Digest {
    return digestFromHex(this.#hash.digest('hex'));
  }

  /** A stream stage that passes its bytes on unchanged, hashing them here. */
  passThrough(): Transform {
    return new Transform({
      transform: (chunk: Buffer, _enc, cb) => {
        this.update(chunk);
        cb(null, chunk);
      },
    });
  }
}

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CONFORMANCE = '/work/shared/conformance';
const EXAMPLES = fileURLToPath(new URL('../../../examples', import.meta.url));

/** A seeded PRNG (mulberry32): the same seed gives the same cases, so a failure can be replayed. */
export class Prng {
  #s: number;
  constructor(seed: number) {
    this.#s = seed | 0;
  }
  next(): number {
    this.#s = (this.#s + 0x6d2b79f5) | 0;
    let t = Math.imul(this.#s ^ (this.#s >>> 15), 1 | this.#s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  /** Mostly small, sometimes huge: `max` is reached with probability ~1/8. */
  size(max: number): number {
    return this.next() < 0.875 ? 1 + this.int(Math.min(max, 64)) : 1 + this.int(max);
  }
}

/**
 * Seed Dockerfiles: BuildKit's conformance tables (build, instruction and parser cases) and the
 * repository's examples. Missing directories are skipped (the list is then shorter, not empty).
 */
export function loadSeeds(): string[] {
  const out: string[] = [];
  const cases = (file: string) => {
    if (!existsSync(file)) return;
    const data = JSON.parse(readFileSync(file, 'utf8')) as unknown;
    const list = Array.isArray(data) ? data : ((data as { cases?: unknown[] }).cases ?? []);
    for (const c of list as { dockerfile?: unknown }[]) if (typeof c.dockerfile === 'string') out.push(c.dockerfile);
  };
  cases(join(CONFORMANCE, 'frontend/build-cases.json'));
  cases(join(CONFORMANCE, 'frontend/instruction-cases.json'));
  for (const dir of ['parser/testfiles', 'parser/testfiles-negative']) {
    const base = join(CONFORMANCE, dir);
    if (!existsSync(base)) continue;
    for (const n of readdirSync(base)) {
      const f = join(base, n, 'Dockerfile');
      if (existsSync(f)) out.push(readFileSync(f, 'utf8'));
    }
  }
  for (const n of existsSync(EXAMPLES) ? readdirSync(EXAMPLES) : []) {
    const f = join(EXAMPLES, n, 'Dockerfile');
    if (existsSync(f)) out.push(readFileSync(f, 'utf8'));
  }
  out.push('FROM busybox\nARG a=1\nENV b=${a:-x} c="$a" d=${a/1/2}\nRUN <<EOF\necho $b\nEOF\nCOPY --from=0 / /\nONBUILD RUN true\n');
  return out;
}

/** Fragments that steer the lexer and parser into their corners. */
const TOKENS = [
  '$', '${', '}', '${a', '${a:-', '${a:+', '${a:?', '${a#', '${a%%', '${a/', '${a//*/', '$$', '\\', '\\\n', '`', '"', "'", '\n', '\r', '\t', ' ', '\0',
  '\uFFFD', '\uD800', '\u2028', '\u00a0', '=', '[', ']', '["a"', '[1]', '{', '#', '# escape=`\n', '# escape=\\\n', '# syntax=docker/dockerfile:1\n',
  '# check=error=true\n', '<<EOF', '<<-EOF', '<<"EOF"', '<<EOF\n', '\nEOF\n', '--from=', '--from=0 ', '--mount=type=cache,target=/x ', '--chown=1:1 ',
  '--chmod=777 ', '--link ', '--parents ', '--exclude=* ', '--platform=$BUILDPLATFORM ', '--network=none ', 'ONBUILD ', 'ONBUILD ONBUILD ',
  '\nFROM scratch AS x\n', '\nFROM x\n', '\nARG a=${a}${a}\n', '\nARG ', '\nENV ', '\nCOPY ', '\nADD ', '\nRUN ', '\nHEALTHCHECK --interval=0s CMD ',
  '\nEXPOSE 1-65535/udp\n', '\nWORKDIR ', '\nUSER ', '\nSHELL ["', '\nLABEL ', '\nVOLUME [', '\nSTOPSIGNAL ', '\nCMD [', '\nENTRYPOINT ',
];

type Mutation = (text: string, rnd: Prng, seeds: readonly string[]) => string;

/**
 * Cases stay below this size: above the frontend's 2 MiB limit, so that check is exercised too,
 * but small enough that mutations of mutations never build gigabyte strings.
 */
const MAX_CASE = 3 << 20;

/** A repeat count from `rnd.size(max)`, lowered so that `unit`-long copies fit in MAX_CASE. */
const repeats = (r: Prng, max: number, unit: number): number => Math.max(1, Math.min(r.size(max), Math.floor(MAX_CASE / Math.max(1, unit))));

const at = (text: string, rnd: Prng) => rnd.int(text.length + 1);
const lines = (text: string) => text.split('\n');

const MUTATIONS: readonly Mutation[] = [
  // Flip: one character replaced, by a token's first character or any code unit.
  (t, r) => {
    const i = r.int(Math.max(1, t.length));
    const c = r.next() < 0.5 ? r.pick(TOKENS)[0]! : String.fromCharCode(r.int(0x10000));
    return t.slice(0, i) + c + t.slice(i + 1);
  },
  // Insert a token (or a few).
  (t, r) => {
    const i = at(t, r);
    const token = r.pick(TOKENS);
    return t.slice(0, i) + token.repeat(repeats(r, 8, token.length)) + t.slice(i);
  },
  // Duplicate a line, sometimes thousands of times.
  (t, r) => {
    const ls = lines(t);
    const i = r.int(ls.length);
    ls.splice(i, 0, ...Array<string>(repeats(r, 5000, ls[i]!.length + 1)).fill(ls[i]!));
    return ls.join('\n');
  },
  // Repeat a short substring a lot (huge lines, long runs of one character).
  (t, r) => {
    const i = at(t, r);
    const piece = t.slice(i, i + 1 + r.int(12)) || r.pick(TOKENS);
    return t.slice(0, i) + piece.repeat(repeats(r, 20_000, piece.length)) + t.slice(i);
  },
  // Delete a range.
  (t, r) => {
    const i = at(t, r);
    return t.slice(0, i) + t.slice(i + r.size(200));
  },
  // Splice in lines from another seed.
  (t, r, seeds) => {
    const ls = lines(t);
    const other = lines(r.pick(seeds));
    const from = r.int(other.length);
    ls.splice(r.int(ls.length + 1), 0, ...other.slice(from, from + r.size(10)));
    return ls.join('\n');
  },
  // Nest a variable expansion around a point, sometimes very deep.
  (t, r) => {
    const i = at(t, r);
    const n = r.size(20_000);
    const open = r.pick(['${a:-', '${a:+', '"${a:-', '${a/', '${a#']);
    const close = open === '"${a:-' ? '}"' : open === '${a/' ? '/x}' : '}';
    return t.slice(0, i) + open.repeat(n) + 'x' + close.repeat(r.next() < 0.8 ? n : r.int(n)) + t.slice(i);
  },
  // Invalid UTF-8, decoded as the CLI decodes a Dockerfile (U+FFFD) — or raw NUL bytes.
  (t, r) => {
    const b = Buffer.from(t, 'utf8');
    const i = r.int(b.length + 1);
    const junk = Buffer.from(Array.from({ length: r.size(16) }, () => (r.next() < 0.2 ? 0 : 0x80 + r.int(0x80))));
    return Buffer.concat([b.subarray(0, i), junk, b.subarray(i)]).toString('utf8');
  },
  // A very long word.
  (t, r) => {
    const i = at(t, r);
    return t.slice(0, i) + 'a'.repeat(repeats(r, 100_000, 1)) + t.slice(i);
  },
];

/** 1–4 random mutations of a random seed. */
export function mutate(seeds: readonly string[], rnd: Prng): string {
  let text = rnd.pick(seeds);
  for (let n = 1 + rnd.int(4); n > 0; n--) text = rnd.pick(MUTATIONS)(text, rnd, seeds).slice(0, MAX_CASE);
  return text;
}

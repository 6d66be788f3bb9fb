import { BuildError } from '../../errors.js';
import { COMPRESSION_KEYS, parseCompressionFields, splitCsv } from '../../exporter/export-target.js';
import type { CompressionOptions } from '../../oci/layer/layer-compression.js';
import { parseReference } from '../../oci/reference.js';
import { parseByteSize } from '../../byte-size.js';

/**
 * Which cache records go out: `min` only those of the steps whose results make up the final
 * image (its layers and nothing else, BuildKit's default), `max` every step of the build,
 * intermediate stages included (more hits for a second machine, more layers to upload).
 */
export type CacheMode = 'min' | 'max';

/** `--cache-to`, parsed once at the CLI edge. */
/** Default `mounts-max-size`: a package cache bigger than this is cheaper to rebuild than to ship. */
export const DEFAULT_MOUNTS_MAX_SIZE = 2 * 1024 ** 3;

/** `mounts=`: also carry RUN cache mounts (all the build used, or the ids listed), each within `maxSize`. */
export interface MountsExport {
  readonly mounts?: { readonly select: true | readonly string[]; readonly maxSize: number };
}

export type CacheExportSpec =
  | ({ readonly type: 'registry'; readonly ref: string; readonly mode: CacheMode; readonly compression?: CompressionOptions } & MountsExport)
  | ({ readonly type: 'local'; readonly dest: string; readonly mode: CacheMode; readonly compression?: CompressionOptions } & MountsExport)
  /** The records of the final image's steps inside its own config (see INLINE_CACHE_KEY); always mode=min. */
  | { readonly type: 'inline' };

/** `--cache-from`, parsed once at the CLI edge. */
export type CacheImportSpec = { readonly type: 'registry'; readonly ref: string } | { readonly type: 'local'; readonly src: string };

const HINT_TO = 'use type=registry,ref=REPO:TAG[,mode=min|max][,compression=gzip|zstd|uncompressed], type=local,dest=DIR[,mode=min|max] or type=inline';
const HINT_FROM = 'use type=registry,ref=REPO:TAG or type=local,src=DIR (a bare REPO:TAG means type=registry)';

/** Parses `--cache-to` (BuildKit's CSV syntax). A bad spec is BuildError('USAGE') naming the flag and the field. */
export function parseCacheTo(spec: string): CacheExportSpec {
  const f = fields('--cache-to', spec, HINT_TO);
  const mode = f.one('mode') ?? 'min';
  if (f.one('type') === 'inline' && f.one('mode') !== undefined) f.bad('type=inline takes no mode: it holds the final image\'s steps (min)');
  if (mode !== 'min' && mode !== 'max') f.bad(`mode=${JSON.stringify(mode)}: expected min or max`);
  const type = f.one('type');
  // BuildKit's registry and local cache exporters take the image outputs' compression keys.
  const compression = (): { compression?: CompressionOptions } => {
    const c = parseCompressionFields(f.one, f.bad);
    return c ? { compression: c } : {};
  };
  if (type === 'registry') {
    f.only(['type', 'ref', 'mode', 'mounts', 'mounts-max-size', ...COMPRESSION_KEYS]);
    return { type, ref: f.ref(), mode: mode as CacheMode, ...mountsOption(f), ...compression() };
  }
  if (type === 'local') {
    f.only(['type', 'dest', 'mode', 'mounts', 'mounts-max-size', ...COMPRESSION_KEYS]);
    return { type, dest: f.required('dest'), mode: mode as CacheMode, ...mountsOption(f), ...compression() };
  }
  if (type === 'inline') {
    f.only(['type']);
    return { type };
  }
  return f.bad(type === undefined ? 'missing type= (registry, local or inline)' : `unsupported type ${JSON.stringify(type)}: expected registry, local or inline`);
}

/**
 * `mounts=true|false|ID[,ID…]` (a list needs CSV quotes: `"mounts=npm,apt"`) and
 * `mounts-max-size=SIZE` (default 2GiB a mount).
 */
function mountsOption(f: ReturnType<typeof fields>): MountsExport {
  const v = f.one('mounts');
  const max = f.one('mounts-max-size');
  if (v === undefined || v === 'false') {
    if (max !== undefined) f.bad('mounts-max-size needs mounts=true or mounts=ID,…');
    return {};
  }
  const ids = v === 'true' ? true : v.split(',').map((s) => s.trim());
  if (ids !== true && ids.some((id) => id === '')) f.bad(`mounts=${JSON.stringify(v)}: expected true, false or cache mount ids (a list in CSV quotes: "mounts=a,b")`);
  let maxSize = DEFAULT_MOUNTS_MAX_SIZE;
  if (max !== undefined) {
    const n = parseByteSize(max);
    if (n === undefined || n <= 0) f.bad(`mounts-max-size=${JSON.stringify(max)}: expected a size such as 500MiB or 2GiB`);
    maxSize = n!;
  }
  return { mounts: { select: ids, maxSize } };
}

/** Parses `--cache-from`; a bare reference (no `=`) means `type=registry,ref=…`, as with docker buildx. */
export function parseCacheFrom(spec: string): CacheImportSpec {
  const f = fields('--cache-from', spec.includes('=') ? spec : `type=registry,ref=${spec}`, HINT_FROM);
  const type = f.one('type');
  if (type === 'registry') {
    f.only(['type', 'ref']);
    return { type, ref: f.ref() };
  }
  if (type === 'local') {
    f.only(['type', 'src']);
    return { type, src: f.required('src') };
  }
  return f.bad(type === undefined ? 'missing type= (registry or local)' : `unsupported type ${JSON.stringify(type)}: expected registry or local`);
}

function fields(flag: string, spec: string, hint: string) {
  const bad = (msg: string): never => {
    throw new BuildError('USAGE', `${flag} ${JSON.stringify(spec)}: ${msg}`, { hint });
  };
  const kv = new Map<string, string>();
  for (const field of splitCsv(spec, bad)) {
    const eq = field.indexOf('=');
    if (eq <= 0) bad(`field ${JSON.stringify(field)} is not key=value`);
    const key = field.slice(0, eq).trim().toLowerCase();
    if (kv.has(key)) bad(`key ${JSON.stringify(key)} given more than once`);
    kv.set(key, field.slice(eq + 1));
  }
  const one = (key: string) => kv.get(key);
  const required = (key: string): string => {
    const v = kv.get(key);
    if (v === undefined || v === '') bad(`type=${kv.get('type')} needs ${key}=…`);
    return v!;
  };
  return {
    bad,
    one,
    required,
    only(allowed: readonly string[]) {
      for (const k of kv.keys()) if (!allowed.includes(k)) bad(`unknown key ${JSON.stringify(k)} (allowed: ${allowed.filter((a) => a !== 'type').join(', ')})`);
    },
    /** The ref, checked now so a typo fails before the build rather than after it. */
    ref(): string {
      const r = required('ref');
      try {
        parseReference(r);
      } catch (e) {
        bad(`ref ${JSON.stringify(r)} is not a valid reference: ${(e as Error).message}`);
      }
      return r;
    },
  };
}

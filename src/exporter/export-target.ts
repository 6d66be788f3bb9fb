import { splitCsvRecord } from '../csv-record.js';
import { BuildError } from '../errors.js';
import type { CompressionOptions, LayerCompression } from '../oci/layer/layer-compression.js';

/**
 * Where a build result goes; parsed once, at the CLI edge, from `--output`.
 * `names` (BuildKit's `name=` key) are extra image names recorded in the output.
 */
export type ExportTarget = (
  | ({ type: 'oci'; dest: string; tar: boolean; names?: readonly string[]; ociMediaTypes?: boolean } & WithCompression)
  | ({ type: 'docker'; dest: string; names?: readonly string[]; ociMediaTypes?: boolean } & WithCompression)
  | { type: 'local'; dest: string; platformSplit?: boolean }
  | { type: 'tar'; dest: string; platformSplit?: boolean }
  | ({ type: 'registry'; name: string; ociMediaTypes?: boolean } & WithCompression)
) & {
  /**
   * `rewrite-timestamp=`: with SOURCE_DATE_EPOCH, clamp the file times of this build's layers to
   * it (image outputs) or set every file's time to it (local, tar). Absent: on when the epoch
   * is set (BuildKit defaults to off; a reproducible build is what setting the epoch asks for).
   */
  rewriteTimestamp?: boolean;
};

/** Image outputs' `compression`, `compression-level`, `force-compression` (absent: gzip at its default level). */
type WithCompression = { compression?: CompressionOptions };

/** The outputs that write an image (manifest, config, layers) and so have media types. */
export type ImageTarget = Extract<ExportTarget, { type: 'oci' | 'docker' | 'registry' }> & WithCompression;

/**
 * BuildKit's `oci-mediatypes`: whether an image output keeps the OCI media types tsbuild stores,
 * or gets Docker's schema2 ones. Defaults as BuildKit (moby/buildkit exporter/oci/export.go
 * defaultOCITypes, exporter/containerimage/export.go DefaultOCITypes, at 73ed6825, 2026):
 * type=oci always OCI; type=registry (BuildKit's image exporter) OCI, the default since its
 * compatibility version 0.31. type=docker keeps Docker's types, BuildKit's docker-exporter
 * default before 0.31: docker-archive readers such as podman take an OCI-typed config for a
 * plain OCI image and drop its Healthcheck and Shell.
 */
export function usesOciMediaTypes(target: ImageTarget): boolean {
  return target.ociMediaTypes ?? target.type !== 'docker';
}

/** `dest=-`: the archive goes to standard output (oci and docker archives, tar). */
export const STDOUT = '-';

export const COMPRESSION_KEYS = ['compression', 'compression-level', 'force-compression'];
const KEYS: Readonly<Record<ExportTarget['type'], readonly string[]>> = {
  oci: ['type', 'dest', 'tar', 'name', 'rewrite-timestamp', 'oci-mediatypes', ...COMPRESSION_KEYS],
  docker: ['type', 'dest', 'name', 'rewrite-timestamp', 'oci-mediatypes', ...COMPRESSION_KEYS],
  local: ['type', 'dest', 'rewrite-timestamp', 'platform-split'],
  tar: ['type', 'dest', 'rewrite-timestamp', 'platform-split'],
  registry: ['type', 'name', 'push', 'rewrite-timestamp', 'oci-mediatypes', ...COMPRESSION_KEYS],
};

/**
 * BuildKit's `compression=gzip|zstd|uncompressed`, `compression-level=N`, `force-compression=
 * true|false` (exporter/containerimage/opts.go), shared by the image outputs and --cache-to.
 * `one(key)` reads a field; `bad` reports a usage error. Absent keys: undefined (gzip, its
 * default level, no force). Levels: gzip 0-9 (zlib's), zstd 0-22 (libzstd's; 0 is its default,
 * 3) — BuildKit hands zstd levels to klauspost/compress's four speed classes instead, so equal
 * numbers may give other bytes than BuildKit's, never other content. zstd keeps Docker media
 * types possible (BuildKit's zstdType.OnlySupportOCITypes is false: containerd's
 * application/vnd.docker.image.rootfs.diff.tar.zstd), so oci-mediatypes=false still applies.
 */
export function parseCompressionFields(one: (key: string) => string | undefined, bad: (msg: string) => never): CompressionOptions | undefined {
  const type = one('compression');
  const levelText = one('compression-level');
  const forceText = one('force-compression');
  if (type === undefined && levelText === undefined && forceText === undefined) return undefined;
  if (type !== undefined && type !== 'gzip' && type !== 'zstd' && type !== 'uncompressed') bad(`compression=${JSON.stringify(type)}: expected gzip, zstd or uncompressed`);
  const compression = (type ?? 'gzip') as LayerCompression;
  let level: number | undefined;
  if (levelText !== undefined && compression !== 'uncompressed') {
    const [lo, hi] = compression === 'gzip' ? [0, 9] : [0, 22];
    if (!/^\d+$/.test(levelText.trim()) || Number(levelText) < lo || Number(levelText) > hi) bad(`compression-level=${JSON.stringify(levelText)}: expected an integer from ${lo} to ${hi} for ${compression}`);
    level = Number(levelText);
    if (compression === 'zstd' && level === 0) level = 3;
  }
  if (forceText !== undefined && forceText !== 'true' && forceText !== 'false') bad(`force-compression=${JSON.stringify(forceText)}: expected true or false`);
  return { compression, ...(level !== undefined ? { level } : {}), ...(forceText === 'true' ? { force: true } : {}) };
}

/**
 * BuildKit refuses attestations with `oci-mediatypes=false` (exporter/containerimage/writer.go:
 * "cannot export attestations with \"oci-mediatypes=false\""); tsbuild says so before building.
 * The docker archive holds one image and no attestations, so it is not concerned.
 */
export function checkAttestationOutputs(outputs: readonly ExportTarget[]): void {
  const o = outputs.find((t) => (t.type === 'oci' || t.type === 'registry') && t.ociMediaTypes === false);
  if (o) {
    throw new BuildError('USAGE', `--output type=${o.type}${o.type === 'registry' ? `,name=${o.name}` : ''},oci-mediatypes=false: cannot export attestations with "oci-mediatypes=false"`, {
      hint: 'attestations (--provenance, --attest) need OCI media types: drop oci-mediatypes=false or the attestation',
    });
  }
}

/**
 * Parses BuildKit's `--output` syntax: CSV `key=value` fields (`type=oci,dest=out.tar`,
 * `type=oci,dest=dir,tar=false`, `type=docker,dest=…`, `type=local,dest=…`,
 * `type=tar,dest=…`, `type=registry,name=…`; values may be double-quoted; the image outputs
 * oci, docker and registry take `oci-mediatypes=true|false` and the compression keys of
 * {@link parseCompressionFields}), or a bare path,
 * meaning `type=local,dest=PATH`, or `-`, meaning `type=tar,dest=-`. An archive's dest may be
 * `-` (standard output). Anything else is BuildError('USAGE') naming the bad key or value.
 */
export function parseOutputSpec(spec: string): ExportTarget {
  const bad = (msg: string): never => {
    throw new BuildError('USAGE', `--output ${JSON.stringify(spec)}: ${msg}`, {
      hint: 'use e.g. type=oci,dest=image.tar | type=oci,dest=DIR,tar=false | type=docker,dest=- | type=local,dest=DIR | type=tar,dest=rootfs.tar | type=registry,name=REF',
    });
  };
  if (spec.trim() === '') bad('empty output');
  if (!spec.includes('=')) {
    return spec === STDOUT ? { type: 'tar', dest: STDOUT } : { type: 'local', dest: spec };
  }
  const fields = splitCsv(spec, bad);
  const kv = new Map<string, string[]>();
  for (const f of fields) {
    const eq = f.indexOf('=');
    if (eq <= 0) bad(`field ${JSON.stringify(f)} is not key=value`);
    const key = f.slice(0, eq).trim().toLowerCase();
    const value = f.slice(eq + 1);
    kv.set(key, [...(kv.get(key) ?? []), value]);
  }
  const one = (key: string): string | undefined => {
    const vs = kv.get(key);
    if (!vs) return undefined;
    if (vs.length > 1 && key !== 'name') bad(`key ${JSON.stringify(key)} given more than once`);
    return vs[vs.length - 1];
  };
  const type = one('type');
  if (type === undefined) bad('missing type= (oci, docker, local, tar or registry)');
  if (!(type! in KEYS)) bad(`unknown type ${JSON.stringify(type)}: expected oci, docker, local, tar or registry`);
  const t = type as ExportTarget['type'];
  for (const key of kv.keys()) {
    if (!KEYS[t].includes(key)) bad(`unknown key ${JSON.stringify(key)} for type=${t} (allowed: ${KEYS[t].filter((k) => k !== 'type').join(', ')})`);
  }
  const dest = (): string => {
    const d = one('dest');
    if (d === undefined || d === '') bad(`type=${t} needs dest=PATH`);
    if (d === STDOUT && (t === 'local' || (t === 'oci' && one('tar') === 'false'))) bad('dest=- (standard output) takes an archive: type=oci, docker or tar');
    return d!;
  };
  const names = (): { names?: readonly string[] } => {
    const ns = (kv.get('name') ?? []).flatMap((v) => v.split(',')).map((s) => s.trim()).filter((s) => s !== '');
    return ns.length > 0 ? { names: ns } : {};
  };
  const bool = (key: string): boolean | undefined => {
    const v = one(key);
    if (v !== undefined && v !== 'true' && v !== 'false') bad(`${key}=${JSON.stringify(v)}: expected true or false`);
    return v === undefined ? undefined : v === 'true';
  };
  const rewrite = bool('rewrite-timestamp');
  const common = rewrite === undefined ? {} : { rewriteTimestamp: rewrite };
  // BuildKit's platform-split: a directory per platform even for one (true), or none for several (false).
  const split = (): { platformSplit?: boolean } => {
    const v = bool('platform-split');
    return v === undefined ? {} : { platformSplit: v };
  };
  const mediaTypes = (): { ociMediaTypes?: boolean; compression?: CompressionOptions } => {
    const v = bool('oci-mediatypes');
    const c = parseCompressionFields(one, bad);
    return { ...(v === undefined ? {} : { ociMediaTypes: v }), ...(c ? { compression: c } : {}) };
  };
  switch (t) {
    case 'oci':
      return { type: 'oci', dest: dest(), tar: bool('tar') ?? true, ...names(), ...mediaTypes(), ...common };
    case 'docker':
      return { type: 'docker', dest: dest(), ...names(), ...mediaTypes(), ...common };
    case 'local':
      return { type: 'local', dest: dest(), ...split(), ...common };
    case 'tar':
      return { type: 'tar', dest: dest(), ...split(), ...common };
    case 'registry': {
      const name = one('name');
      if (name === undefined || name === '') bad('type=registry needs name=REF');
      const push = one('push');
      if (push !== undefined && push !== 'true') bad(`push=${JSON.stringify(push)}: type=registry always pushes`);
      return { type: 'registry', name: name!, ...mediaTypes(), ...common };
    }
    default: {
      const never: never = t;
      return never;
    }
  }
}

/** `--output`-style CSV fields, blank ones dropped; an open quote is reported through `bad`. */
export function splitCsv(s: string, bad: (msg: string) => never): string[] {
  const fields = splitCsvRecord(s) ?? bad('unterminated double quote');
  return fields.filter((f) => f.trim() !== '');
}

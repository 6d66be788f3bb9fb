import { parseByteSize } from '../byte-size.js';
import { splitCsvRecord } from '../csv-record.js';
import { posix } from 'node:path';
import type { RunMount } from '../solver/graph.js';

/**
 * A parsed `RUN --mount=…` value before its `from` is resolved to a vertex: the graph's
 * RunMount with `from` (a stage, image or named context; undefined = the build context) in
 * place of the input index.
 */
export type MountSpec =
  | (Omit<Extract<RunMount, { type: 'cache' }>, 'input'> & { readonly from?: string })
  | (Omit<Extract<RunMount, { type: 'bind' }>, 'input'> & { readonly from?: string })
  | Extract<RunMount, { type: 'tmpfs' | 'secret' | 'ssh' }>;

/** Thrown with a message only; the caller adds the Dockerfile location. */
export class MountSyntaxError extends Error {}

const KEYS: Record<string, string> = {
  type: 'type',
  target: 'target',
  dst: 'target',
  destination: 'target',
  source: 'source',
  src: 'source',
  from: 'from',
  id: 'id',
  sharing: 'sharing',
  readonly: 'readonly',
  ro: 'readonly',
  rw: 'readwrite',
  readwrite: 'readwrite',
  mode: 'mode',
  uid: 'uid',
  gid: 'gid',
  size: 'size',
  required: 'required',
  env: 'env',
};

/**
 * Parses one `--mount` value as BuildKit's dockerfile instructions/commands_runmount.go does:
 * comma-separated `key=value` (CSV quoting), boolean keys allowed bare, `type` defaulting to
 * bind, paths made absolute against the working directory.
 */
export function parseMount(value: string, workdir: string): MountSpec {
  const kv = new Map<string, string>();
  for (const field of splitCsv(value)) {
    const eq = field.indexOf('=');
    const rawKey = (eq < 0 ? field : field.slice(0, eq)).trim().toLowerCase();
    const key = KEYS[rawKey];
    if (!key) throw new MountSyntaxError(`unexpected key '${rawKey}' in '${field}'`);
    if (eq < 0 && !['readonly', 'readwrite', 'required'].includes(key)) throw new MountSyntaxError(`invalid field '${field}' must be a key=value pair`);
    kv.set(key, eq < 0 ? 'true' : field.slice(eq + 1));
  }
  const type = kv.get('type') ?? 'bind';
  const bool = (k: string): boolean => {
    const v = kv.get(k);
    if (v === undefined) return false;
    if (!['true', 'false', '1', '0'].includes(v.toLowerCase())) throw new MountSyntaxError(`invalid value for ${k}: ${v}`);
    return v.toLowerCase() === 'true' || v === '1';
  };
  const num = (k: string, def: number, radix = 10): number => {
    const v = kv.get(k);
    if (v === undefined) return def;
    const n = radix === 8 ? (/^[0-7]+$/.test(v) ? Number.parseInt(v, 8) : NaN) : /^\d+$/.test(v) ? Number(v) : NaN;
    if (Number.isNaN(n)) throw new MountSyntaxError(`invalid value for ${k}: ${v}`);
    return n;
  };
  const abs = (p: string): string => posix.normalize(posix.isAbsolute(p) ? p : posix.join(workdir || '/', p));
  const target = kv.get('target');
  const allowOnly = (allowed: string[]): void => {
    for (const k of kv.keys()) if (k !== 'type' && !allowed.includes(k)) throw new MountSyntaxError(`${k} is not supported for ${type} mounts`);
  };
  switch (type) {
    case 'bind': {
      allowOnly(['target', 'source', 'from', 'readonly', 'readwrite']);
      if (!target) throw new MountSyntaxError('mount type bind requires a target');
      return { type, target: abs(target), source: cleanSource(kv.get('source') ?? '/'), from: kv.get('from'), readwrite: bool('readwrite') && !bool('readonly') };
    }
    case 'cache': {
      allowOnly(['target', 'source', 'from', 'id', 'sharing', 'readonly', 'readwrite', 'mode', 'uid', 'gid']);
      if (!target) throw new MountSyntaxError('mount type cache requires a target');
      const sharing = kv.get('sharing') ?? 'shared';
      if (sharing !== 'shared' && sharing !== 'private' && sharing !== 'locked') throw new MountSyntaxError(`unsupported sharing value "${sharing}"`);
      return {
        type,
        target: abs(target),
        id: kv.get('id') || abs(target),
        sharing,
        readonly: bool('readonly'),
        from: kv.get('from'),
        source: cleanSource(kv.get('source') ?? '/'),
        mode: num('mode', 0o755, 8),
        uid: num('uid', 0),
        gid: num('gid', 0),
      };
    }
    case 'tmpfs': {
      allowOnly(['target', 'size']);
      if (!target) throw new MountSyntaxError('mount type tmpfs requires a target');
      const size = kv.get('size');
      return size === undefined ? { type, target: abs(target) } : { type, target: abs(target), size: parseSize(size) };
    }
    case 'secret': {
      allowOnly(['target', 'source', 'id', 'required', 'mode', 'uid', 'gid', 'env']);
      const id = kv.get('id') || (target ? posix.basename(target) : kv.get('env') ?? '');
      if (!id) throw new MountSyntaxError('secret mount requires an id or a target');
      const env = kv.get('env');
      const dest = target ? abs(target) : env ? undefined : `/run/secrets/${id}`;
      return { type, id, ...(dest ? { target: dest } : {}), ...(env ? { env } : {}), required: bool('required'), mode: num('mode', 0o400, 8), uid: num('uid', 0), gid: num('gid', 0) };
    }
    case 'ssh': {
      allowOnly(['target', 'id', 'required', 'mode', 'uid', 'gid']);
      return { type, id: kv.get('id') || 'default', target: target ? abs(target) : '/run/buildkit/ssh_agent.0', required: bool('required') };
    }
    default:
      throw new MountSyntaxError(`unsupported mount type "${type}"`);
  }
}

/** Sources are relative to the source root; `..` can't climb out of it. */
function cleanSource(p: string): string {
  return posix.normalize(`/${p}`);
}

/** tmpfs `size=`: `64m`, `1g`, `4096`. */
function parseSize(v: string): number {
  const n = parseByteSize(v);
  if (n === undefined) throw new MountSyntaxError(`invalid size: '${v}'`);
  return n;
}

/** The mount's fields (encoding/csv: a quote opens only at a field's start), empty ones dropped. */
function splitCsv(s: string): string[] {
  const fields = splitCsvRecord(s, { quoteAtFieldStartOnly: true });
  if (!fields) throw new MountSyntaxError(`unterminated quote in '${s}'`);
  return fields.filter((f) => f !== '');
}

import { parseByteSize } from '../byte-size.js';
import { splitCsvRecord } from '../csv-record.js';
import { posix } from 'node:path';
import type { RunMount } from '../solver/graph.js';
import { withSuggestion } from './did-you-mean.js';

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

const TYPES = ['bind', 'cache', 'tmpfs', 'secret', 'ssh'] as const;
const SHARING = ['shared', 'private', 'locked'] as const;
/** BuildKit's list for the did-you-mean of an unknown key (instructions/commands_runmount.go). */
const ALL_KEYS = ['type', 'from', 'source', 'target', 'readonly', 'id', 'sharing', 'required', 'size', 'mode', 'uid', 'gid', 'src', 'dst', 'destination', 'ro', 'rw', 'readwrite', 'env'];

/**
 * BuildKit refuses a variable in `from` when it parses the Dockerfile, before any expansion (a `$`
 * as the last character is literal): a mount's source must be a stage known before the build.
 */
export function checkMountFrom(value: string): void {
  for (const field of splitCsv(value)) {
    const eq = field.indexOf('=');
    if (eq < 0 || field.slice(0, eq).toLowerCase() !== 'from') continue;
    const v = field.slice(eq + 1);
    const i = v.indexOf('$');
    if (i !== -1 && i !== v.length - 1) throw new MountSyntaxError("'from' doesn't support variable expansion, define alias stage instead");
  }
}

/**
 * Parses one `--mount` value as BuildKit's instructions/commands_runmount.go and
 * dockerfile2llb/convert_runmount.go do: comma-separated `key=value` (CSV quoting), each value
 * expanded on its own with `expand`, boolean keys allowed bare, `type` defaulting to bind, paths
 * made absolute against the working directory. A bind, cache or tmpfs mount without a target is
 * mounted at the working directory (an error only when that is `/`).
 */
export function parseMount(value: string, workdir: string, expand: (v: string) => string = (v) => v): MountSpec {
  let type: (typeof TYPES)[number] = 'bind';
  let from: string | undefined;
  let source = '';
  let target = '';
  let readonly: boolean | undefined;
  let size: number | undefined;
  let id = '';
  let sharing: (typeof SHARING)[number] | undefined;
  let required = false;
  let mode: number | undefined;
  let uid: number | undefined;
  let gid: number | undefined;
  let env: string | undefined;
  const bool = (k: string, v: string): boolean => {
    const b = parseGoBool(v);
    if (b === undefined) throw new MountSyntaxError(`invalid value for ${k}: ${v}`);
    return b;
  };
  const uint = (k: string, v: string, radix: 8 | 10): number => {
    const ok = radix === 8 ? /^(0[oO])?[0-7]+$/.test(v) : /^\d+$/.test(v);
    const n = ok ? Number.parseInt(v.replace(/^0[oO]/, ''), radix) : NaN;
    if (Number.isNaN(n) || n > 0xffffffff) throw new MountSyntaxError(`invalid value ${v} for ${k}`);
    return n;
  };
  for (const field of splitCsv(value)) {
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).toLowerCase();
    if (eq < 0) {
      if (key === 'readonly' || key === 'ro') readonly = true;
      else if (key === 'readwrite' || key === 'rw') readonly = false;
      else if (key === 'required') {
        if (type !== 'secret' && type !== 'ssh') throw new MountSyntaxError(`unexpected key '${key}' for mount type '${type}'`);
        required = true;
      } else throw new MountSyntaxError(`invalid field '${field}' must be a key=value pair`);
      continue;
    }
    const v = expand(field.slice(eq + 1));
    switch (key) {
      case 'type': {
        const t = v.toLowerCase();
        if (!(TYPES as readonly string[]).includes(t)) throw new MountSyntaxError(withSuggestion(`unsupported mount type ${JSON.stringify(v)}`, v, TYPES));
        type = t as (typeof TYPES)[number];
        break;
      }
      case 'from':
        from = v;
        break;
      case 'source':
      case 'src':
        source = v;
        break;
      case 'target':
      case 'dst':
      case 'destination':
        target = v;
        break;
      case 'readonly':
      case 'ro':
        readonly = bool(key, v);
        break;
      case 'readwrite':
      case 'rw':
        readonly = !bool(key, v);
        break;
      case 'required':
        if (type !== 'secret' && type !== 'ssh') throw new MountSyntaxError(`unexpected key '${key}' for mount type '${type}'`);
        required = bool(key, v);
        break;
      case 'size':
        if (type !== 'tmpfs') throw new MountSyntaxError(`unexpected key '${key}' for mount type '${type}'`);
        size = parseByteSize(v);
        if (size === undefined) throw new MountSyntaxError(`invalid value for ${key}: ${v}`);
        break;
      case 'id':
        id = v;
        break;
      case 'sharing': {
        const s = v.toLowerCase();
        if (!(SHARING as readonly string[]).includes(s)) throw new MountSyntaxError(withSuggestion(`unsupported sharing value ${JSON.stringify(v)}`, v, SHARING));
        sharing = s as (typeof SHARING)[number];
        break;
      }
      case 'mode':
        mode = uint(key, v, 8);
        break;
      case 'uid':
        uid = uint(key, v, 10);
        break;
      case 'gid':
        gid = uint(key, v, 10);
        break;
      case 'env':
        env = v;
        break;
      default:
        throw new MountSyntaxError(withSuggestion(`unexpected key '${key}' in '${field}'`, key, ALL_KEYS));
    }
  }
  if (type === 'bind' || type === 'tmpfs') {
    for (const [k, val] of [['mode', mode], ['uid', uid], ['gid', gid]] as const) {
      if (val !== undefined) throw new MountSyntaxError(`${k} not allowed for ${JSON.stringify(type)} type mounts`);
    }
  }
  if (type === 'secret') {
    if (from !== undefined && from !== '') throw new MountSyntaxError('secret mount should not have a from');
    if (sharing) throw new MountSyntaxError('secret mount should not define sharing');
    if (!source && !target && !id) throw new MountSyntaxError('invalid secret mount. one of source, target required');
    if (source && id) throw new MountSyntaxError("both source and id can't be set");
  }
  if (sharing && type !== 'cache') throw new MountSyntaxError(`invalid cache sharing set for ${type} mount`);

  const abs = (p: string): string => posix.join('/', posix.isAbsolute(p) ? p : posix.join(workdir || '/', p));
  /** bind, cache and tmpfs: a missing target is the working directory, never `/`. */
  const mountTarget = (): string => {
    const t = abs(target);
    if (t === '/') throw new MountSyntaxError(`invalid mount target ${JSON.stringify(t)}`);
    return t;
  };
  switch (type) {
    case 'bind':
      return { type, target: mountTarget(), source: cleanSource(source), from: from || undefined, readwrite: readonly === false };
    case 'cache':
      return {
        type,
        target: mountTarget(),
        // As BuildKit: the target as written (not made absolute), cleaned; "" gives ".".
        id: id || goClean(target),
        sharing: sharing ?? 'shared',
        readonly: readonly === true,
        from: from || undefined,
        source: cleanSource(source),
        mode: mode ?? 0o755,
        uid: uid ?? 0,
        gid: gid ?? 0,
        ...(mode !== undefined || uid !== undefined || gid !== undefined ? { owned: true } : {}),
      };
    case 'tmpfs':
      return size === undefined ? { type, target: mountTarget() } : { type, target: mountTarget(), size };
    case 'secret': {
      const sid = source || id || posix.basename(target);
      const dest = target ? abs(target) : env !== undefined ? undefined : `/run/secrets/${posix.basename(sid)}`;
      return { type, id: sid, ...(dest ? { target: dest } : {}), ...(env !== undefined ? { env } : {}), required, mode: mode ?? 0o400, uid: uid ?? 0, gid: gid ?? 0 };
    }
    case 'ssh':
      if (source) throw new MountSyntaxError('ssh does not support source');
      // llb.AddSSHSocket: 0600 root:root unless given.
      return { type, id: id || 'default', target: target ? abs(target) : '/run/buildkit/ssh_agent.0', required, mode: mode ?? 0o600, uid: uid ?? 0, gid: gid ?? 0 };
  }
}

/** Go's strconv.ParseBool. */
function parseGoBool(v: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
  return undefined;
}

/** Go's path.Clean: no trailing slash, "" is ".". */
function goClean(p: string): string {
  if (p === '') return '.';
  const n = posix.normalize(p);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

/** Sources are relative to the source root; `..` can't climb out of it. */
function cleanSource(p: string): string {
  return posix.join('/', p);
}

/** The mount's fields (encoding/csv: a quote opens only at a field's start), empty ones dropped. */
function splitCsv(s: string): string[] {
  const fields = splitCsvRecord(s, { quoteAtFieldStartOnly: true });
  if (!fields) throw new MountSyntaxError(`unterminated quote in '${s}'`);
  return fields.filter((f) => f !== '');
}

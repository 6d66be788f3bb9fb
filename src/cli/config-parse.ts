import TOML from '@iarna/toml';
import type { RegistryConfig, TsbuildConfig } from '../../schemas/types/config.js';
import { parseByteSize } from '../byte-size.js';
import { BuildError } from '../errors.js';
import { ISOLATIONS } from '../runtime/isolation-modes.js';
import { ENTITLEMENTS } from './run-secrets.js';
import { nearest } from './suggest.js';
import { parseDurationMs } from './units.js';

// tsbuild.toml's parser and checks, apart from config-file.ts so that the TOML parser loads only
// when there is a file to read.

/** Parses and validates config text; `path` is for messages. Pure. */
export function parseConfig(text: string, path: string): { config: TsbuildConfig; lines: Map<string, number> } {
  let raw: Record<string, unknown>;
  try {
    raw = TOML.parse(text) as Record<string, unknown>;
  } catch (e) {
    const err = e as { line?: number; message: string };
    const line = typeof err.line === 'number' ? err.line + 1 : undefined;
    const first = err.message.split('\n')[0];
    throw new BuildError('USAGE', `${path}${line ? `:${line}` : ''}: invalid TOML: ${first}`, { cause: e });
  }
  const lines = keyLines(text);
  const fail = (key: string, msg: string): never => {
    const line = lines.get(key) ?? lines.get(key.split('.').slice(0, -1).join('.'));
    throw new BuildError('USAGE', `${path}${line ? `:${line}` : ''}: ${key}: ${msg}`, { hint: 'see schemas/tsbuild/config.schema.json for the keys tsbuild.toml accepts' });
  };
  const config: TsbuildConfig = {};
  for (const [k, v] of Object.entries(raw)) {
    switch (k) {
      case 'root':
        config.root = str(v, k, fail);
        break;
      case 'max-parallelism':
        if (!Number.isInteger(v) || (v as number) < 1) fail(k, `expected a positive integer, got ${show(v)}`);
        config['max-parallelism'] = v as number;
        break;
      case 'progress': {
        const p = str(v, k, fail);
        if (!['auto', 'tty', 'plain', 'rawjson', 'quiet'].includes(p)) fail(k, `expected one of auto, tty, plain, rawjson, quiet, got ${show(v)}`);
        config.progress = p as TsbuildConfig['progress'];
        break;
      }
      case 'gc': {
        const gc = table(v, k, fail);
        config.gc = {};
        for (const [gk, gv] of Object.entries(gc)) {
          const key = `gc.${gk}`;
          if (gk === 'keep-storage') {
            config.gc['keep-storage'] = size(gv, key, fail, '"10GB" or "512MiB"');
          } else if (gk === 'keep-duration') {
            const s = str(gv, key, fail);
            if (parseDurationMs(s) === undefined) fail(key, `expected a duration such as "48h" or "7d", got ${show(gv)}`);
            config.gc['keep-duration'] = s;
          } else fail(key, unknown(gk, ['keep-storage', 'keep-duration']));
        }
        break;
      }
      case 'network': {
        config.network = {};
        for (const [nk, nv] of Object.entries(table(v, k, fail))) {
          const key = `network.${nk}`;
          if (!(NETWORK_KEYS as readonly string[]).includes(nk)) fail(key, unknown(nk, NETWORK_KEYS));
          const s = str(nv, key, fail);
          const ms = parseDurationMs(s);
          if (ms === undefined || ms <= 0) fail(key, `expected a positive duration such as "30s" or "1m30s", got ${show(nv)}`);
          config.network[nk as (typeof NETWORK_KEYS)[number]] = s;
        }
        break;
      }
      case 'registry': {
        const regs = table(v, k, fail);
        config.registry = {};
        for (const [host, rv] of Object.entries(regs)) {
          const base = `registry.${JSON.stringify(host)}`;
          const r: RegistryConfig = {};
          for (const [rk, val] of Object.entries(table(rv, base, fail))) {
            const key = `${base}.${rk}`;
            if (rk === 'mirrors') {
              if (!Array.isArray(val) || val.some((m) => typeof m !== 'string' || m === '')) fail(key, `expected an array of host names, got ${show(val)}`);
              r.mirrors = val as string[];
            } else if (rk === 'insecure') {
              if (typeof val !== 'boolean') fail(key, `expected true or false, got ${show(val)}`);
              r.insecure = val as boolean;
            } else fail(key, unknown(rk, ['mirrors', 'insecure']));
          }
          config.registry[host] = r;
        }
        break;
      }
      case 'unpack': {
        // How far an ADD archive or an image layer may expand (see ExpansionGuard).
        const u = table(v, k, fail);
        config.unpack = {};
        for (const [uk, uv] of Object.entries(u)) {
          const key = `unpack.${uk}`;
          if (uk === 'max-expanded-bytes') {
            config.unpack['max-expanded-bytes'] = size(uv, key, fail, '"100GiB"', true);
          } else if (uk === 'max-expansion-ratio') {
            if (typeof uv !== 'number' || !(uv >= 1)) fail(key, `expected a number of at least 1, got ${show(uv)}`);
            config.unpack['max-expansion-ratio'] = uv as number;
          } else if (uk === 'max-entries') {
            if (!Number.isInteger(uv) || (uv as number) < 1) fail(key, `expected a positive integer, got ${show(uv)}`);
            config.unpack['max-entries'] = uv as number;
          } else fail(key, unknown(uk, ['max-expanded-bytes', 'max-expansion-ratio', 'max-entries']));
        }
        break;
      }
      case 'build': {
        config.build = {};
        for (const [bk, bv] of Object.entries(table(v, k, fail))) {
          const key = `build.${bk}`;
          if (bk === 'isolation') {
            const s = str(bv, key, fail);
            if (!(ISOLATIONS as readonly string[]).includes(s)) fail(key, `expected one of ${ISOLATIONS.join(', ')}, got ${show(bv)}`);
            config.build.isolation = s as (typeof ISOLATIONS)[number];
          } else if (bk === 'allow') {
            // Entitlements every build has, as buildkitd.toml's insecure-entitlements.
            if (!Array.isArray(bv)) fail(key, `expected an array of entitlements such as ["network.host"], got ${show(bv)}`);
            for (const e of bv as unknown[]) {
              if (!(ENTITLEMENTS as readonly unknown[]).includes(e)) fail(key, `unknown entitlement ${show(e)} (known: ${ENTITLEMENTS.join(', ')})`);
            }
            config.build.allow = bv as (typeof ENTITLEMENTS)[number][];
          } else fail(key, unknown(bk, ['isolation', 'allow']));
        }
        break;
      }
      default:
        fail(k, unknown(k, ['root', 'max-parallelism', 'progress', 'gc', 'network', 'registry', 'unpack', 'build']));
    }
  }
  return { config, lines };
}

const NETWORK_KEYS = ['connect-timeout', 'response-timeout', 'idle-timeout', 'retry-budget'] as const;

/**
 * Line of every key: tracks `[table]` headers and `key =` lines (dotted and quoted keys
 * included) and names them as parseConfig's messages do. TOML itself reports no positions for
 * values, and a message without a line is much less useful.
 */
function keyLines(text: string): Map<string, number> {
  const out = new Map<string, number>();
  let table: string[] = [];
  text.split('\n').forEach((line, i) => {
    const header = /^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$/.exec(line);
    if (header) {
      table = splitKey(header[1]!);
      out.set(dotted(table), out.get(dotted(table)) ?? i + 1);
      return;
    }
    const kv = /^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*=/.exec(line);
    if (kv) out.set(dotted([...table, ...splitKey(kv[1]!)]), i + 1);
  });
  return out;
}

function splitKey(k: string): string[] {
  return [...k.matchAll(/"([^"]*)"|'([^']*)'|([A-Za-z0-9_-]+)/g)].map((m) => m[1] ?? m[2] ?? m[3]!);
}

/** As messages name keys: `registry."docker.io".mirrors`. */
function dotted(parts: readonly string[]): string {
  return parts.map((p, i) => (i === 1 && parts[0] === 'registry' ? JSON.stringify(p) : p)).join('.');
}

function str(v: unknown, key: string, fail: (k: string, m: string) => never): string {
  if (typeof v !== 'string') fail(key, `expected a string, got ${show(v)}`);
  return v as string;
}

/** A byte size, as a string ("512MiB") or a whole number of bytes; `nonZero` refuses 0. */
function size(v: unknown, key: string, fail: (k: string, m: string) => never, example: string, nonZero = false): string {
  const s = typeof v === 'number' && Number.isInteger(v) ? String(v) : str(v, key, fail);
  const n = parseByteSize(s);
  if (n === undefined || (nonZero && n === 0)) fail(key, `expected a size such as ${example}, got ${show(v)}`);
  return s;
}

function table(v: unknown, key: string, fail: (k: string, m: string) => never): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Date) fail(key, `expected a table, got ${show(v)}`);
  return v as Record<string, unknown>;
}

function show(v: unknown): string {
  if (Array.isArray(v)) return 'an array';
  if (v instanceof Date) return 'a date';
  if (typeof v === 'object' && v !== null) return 'a table';
  return `${typeof v} ${JSON.stringify(v)}`;
}

function unknown(key: string, valid: readonly string[]): string {
  const near = nearest(key.toLowerCase().replace(/_/g, '-'), valid) ?? (valid.includes(key.toLowerCase().replace(/_/g, '-')) ? key.toLowerCase().replace(/_/g, '-') : undefined);
  return `unknown key${near ? ` (did you mean ${near}?)` : `; valid keys: ${valid.join(', ')}`}`;
}

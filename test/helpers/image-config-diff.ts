/**
 * Compares two images' configs (the OCI image config JSON, whole) by the fields a runtime or a
 * later build reads, and their history, one line per difference: `config Cmd: A != B`,
 * `history[3] created_by: A != B`. Timestamps and fields only docker writes (`container`,
 * `docker_version`, `container_config`) are not compared.
 */

/** The `config` fields compared, explicitly. */
export const ORACLE_CONFIG_FIELDS = [
  'Env', 'Cmd', 'Entrypoint', 'WorkingDir', 'User', 'ExposedPorts', 'Volumes', 'Labels',
  'StopSignal', 'Healthcheck', 'Shell', 'OnBuild', 'ArgsEscaped',
] as const;

/** absent, null, '', false, [] and {} all mean "not set" (Go's omitempty in docker's structs). */
function unset(v: unknown): unknown {
  if (v === null || v === undefined || v === '' || v === false) return undefined;
  if (Array.isArray(v) && v.length === 0) return undefined;
  if (typeof v === 'object' && !Array.isArray(v) && Object.keys(v as object).length === 0) return undefined;
  return v;
}

type Json = Record<string, unknown>;

/** Strings as they are (history lines quote and escape a lot), `-` for unset, JSON otherwise. */
function show(v: unknown): string {
  const u = unset(v);
  return u === undefined ? '-' : typeof u === 'string' ? u : JSON.stringify(u);
}

export function diffImageConfigs(a: Json, b: Json): string[] {
  const ca = (a.config ?? {}) as Json;
  const cb = (b.config ?? {}) as Json;
  const out: string[] = [];
  for (const k of ORACLE_CONFIG_FIELDS) {
    const x = show(ca[k]);
    const y = show(cb[k]);
    if (x !== y) out.push(`config ${k}: ${x} != ${y}`);
  }
  return out;
}

interface HistoryEntry {
  created_by?: string;
  comment?: string;
  empty_layer?: boolean;
}

export function diffHistories(a: Json, b: Json): string[] {
  const ha = (a.history ?? []) as HistoryEntry[];
  const hb = (b.history ?? []) as HistoryEntry[];
  const out: string[] = [];
  if (ha.length !== hb.length) out.push(`history count: ${ha.length} != ${hb.length}`);
  for (let i = 0; i < Math.max(ha.length, hb.length); i++) {
    for (const k of ['created_by', 'empty_layer', 'comment'] as const) {
      const x = show(ha[i]?.[k]);
      const y = show(hb[i]?.[k]);
      if (x !== y) out.push(`history[${i}] ${k}: ${x} != ${y}`);
    }
  }
  return out;
}

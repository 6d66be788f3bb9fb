/**
 * `RUN --device=<spec>` values (BuildKit instructions ParseDevice): a CSV list whose bare field is
 * the CDI device name, plus `name=<device>` and `required[=bool]`.
 */

export interface DeviceRequest {
  readonly name: string;
  readonly required: boolean;
}

/** Splits one CSV record (double quotes group, `""` is a literal quote). */
function csvFields(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (quoted) {
      if (ch === '"' && s[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cur += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (quoted) throw new Error(`invalid device ${JSON.stringify(s)}: unterminated quote`);
  out.push(cur);
  return out;
}

const parseBool = (v: string): boolean | undefined =>
  ['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v) ? true : ['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v) ? false : undefined;

/** Parses a device spec; throws with BuildKit's message on a second name or a bad `required`. */
export function parseDevice(spec: string): DeviceRequest {
  let name = '';
  let required = false;
  const setName = (n: string): void => {
    if (name !== '') throw new Error(`device name already set to ${name}`);
    name = n;
  };
  for (const field of csvFields(spec)) {
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).toLowerCase();
    const value = eq < 0 ? '' : field.slice(eq + 1);
    if (key === 'required') {
      if (eq < 0) {
        required = true;
        continue;
      }
      const b = parseBool(value);
      if (b === undefined) throw new Error(`invalid value for ${key}: ${value}`);
      required = b;
    } else if (key === 'name') setName(value);
    else setName(field);
  }
  return { name, required };
}

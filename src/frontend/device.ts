/**
 * `RUN --device=<spec>` values (BuildKit instructions ParseDevice): a CSV list whose bare field is
 * the CDI device name, plus `name=<device>` and `required[=bool]`.
 */
import { splitCsvRecord } from '../csv-record.js';

export interface DeviceRequest {
  readonly name: string;
  readonly required: boolean;
}

function csvFields(s: string): string[] {
  const fields = splitCsvRecord(s);
  if (!fields) throw new Error(`invalid device ${JSON.stringify(s)}: unterminated quote`);
  return fields;
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

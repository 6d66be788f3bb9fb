/**
 * Instruction flag parsing with BuildKit's BFlags rules: string flags need `--name=value`
 * (`--name=` is the empty string), bool flags take `--b`, `--b=true` or `--b=false`, a
 * strings flag may repeat, and an unknown or repeated flag is an error naming it.
 */

import { withSuggestion } from './did-you-mean.js';

export type FlagType = 'string' | 'bool' | 'strings';

export interface FlagSpec {
  readonly name: string;
  readonly type: FlagType;
  readonly default?: string | boolean;
}

export interface ParsedFlags {
  string(name: string): string;
  bool(name: string): boolean;
  strings(name: string): string[];
  /** Names of the flags that appeared, in first-appearance order. */
  readonly used: readonly string[];
}

/** Thrown with BuildKit's message; the caller adds the Dockerfile location. */
export class FlagError extends Error {
  override readonly name = 'FlagError';
}

export function parseFlags(args: readonly string[], specs: readonly FlagSpec[]): ParsedFlags {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const strings = new Map<string, string>();
  const bools = new Map<string, boolean>();
  const lists = new Map<string, string[]>();
  const used: string[] = [];
  for (const s of specs) {
    if (s.type === 'bool') bools.set(s.name, s.default === true);
    else if (s.type === 'string') strings.set(s.name, typeof s.default === 'string' ? s.default : '');
    else lists.set(s.name, []);
  }
  for (const raw of args) {
    if (!raw.startsWith('--')) throw new FlagError(`arg should start with -- : ${raw}`);
    if (raw === '--') break;
    let name = raw.slice(2);
    let value = '';
    const eq = name.indexOf('=');
    if (eq >= 0) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    const spec = byName.get(name);
    if (!spec) {
      // BuildKit's BFlags.Parse: suggest.WrapError over the instruction's flags.
      throw new FlagError(withSuggestion(`unknown flag: --${name}`, name, byName.keys()));
    }
    if (used.includes(name) && spec.type !== 'strings') throw new FlagError(`duplicate flag specified: ${name}`);
    if (!used.includes(name)) used.push(name);
    switch (spec.type) {
      case 'bool': {
        if (eq >= 0 && value === '') throw new FlagError(`missing a value on flag: ${name}`);
        const v = value.toLowerCase();
        if (v === 'true' || v === '') bools.set(name, true);
        else if (v === 'false') bools.set(name, false);
        else throw new FlagError(`expecting boolean value for flag ${name}, not: ${value}`);
        break;
      }
      case 'string':
        if (eq < 0) throw new FlagError(`missing a value on flag: ${name}`);
        strings.set(name, value);
        break;
      case 'strings':
        if (eq < 0) throw new FlagError(`missing a value on flag: ${name}`);
        lists.get(name)!.push(value);
        break;
      default: {
        const never: never = spec.type;
        throw new Error(`unknown flag type ${String(never)}`);
      }
    }
  }
  return {
    string: (n) => strings.get(n) ?? '',
    bool: (n) => bools.get(n) ?? false,
    strings: (n) => [...(lists.get(n) ?? [])],
    used,
  };
}

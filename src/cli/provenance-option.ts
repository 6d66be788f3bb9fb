import { BuildError } from '../errors.js';
import type { ProvenanceMode, ProvenanceOptions, SlsaVersion } from '../orchestrator/provenance.js';

const KEYS = new Set(['type', 'mode', 'version', 'disabled']);

/**
 * `--provenance[=true|false|min|max|KEY=VALUE,…]` and `--attest type=provenance[,KEY=VALUE…]`,
 * as buildx takes them; attestations are opt-in here (an image then becomes an index). The keys
 * are BuildKit's: mode (min|max, `full` = max), version (v1|v0.2), disabled. Defaults as the newest
 * BuildKit (frontend/attestations/parse.go, llbsolver/provenance.go): SLSA v1, mode=max; a bare
 * `--provenance` (true) is buildx's shorthand for mode=min.
 */
export function provenanceOption(flag: string | boolean | undefined, attest: readonly string[]): { provenance?: ProvenanceOptions } {
  let out: ProvenanceOptions | undefined;
  if (flag !== undefined) {
    const v = flag === true ? 'true' : String(flag).trim();
    if (/^(true|1)$/.test(v)) out = { mode: 'min', version: 'v1' };
    else if (/^(false|0)$/.test(v)) out = undefined;
    else if (/^(min|max)$/.test(v)) out = { mode: v as ProvenanceMode, version: 'v1' };
    else out = parseFields(v, '--provenance');
  }
  for (const a of attest) {
    const fields = fieldsOf(a, '--attest');
    if (fields.get('type') !== 'provenance') throw new BuildError('USAGE', `--attest ${JSON.stringify(a)}: only type=provenance is supported (no SBOM generator here)`);
    out = parseFields(a, '--attest');
  }
  return out ? { provenance: out } : {};
}

function fieldsOf(spec: string, what: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const f of spec.split(',').map((x) => x.trim()).filter(Boolean)) {
    const eq = f.indexOf('=');
    const key = (eq < 0 ? f : f.slice(0, eq)).trim();
    if (!KEYS.has(key)) throw new BuildError('USAGE', `${what} ${JSON.stringify(spec)}: unknown key ${JSON.stringify(key)}`, { hint: 'provenance takes mode=min|max, version=v1|v0.2, disabled=true' });
    fields.set(key, eq < 0 ? '' : f.slice(eq + 1).trim());
  }
  return fields;
}

/** The options one spec gives, or undefined when it disables provenance. */
function parseFields(spec: string, what: string): ProvenanceOptions | undefined {
  const fields = fieldsOf(spec, what);
  if (fields.get('disabled') === 'true') return undefined;
  const mode = fields.get('mode') ?? 'max';
  if (mode !== 'min' && mode !== 'max' && mode !== 'full') throw new BuildError('USAGE', `${what} ${JSON.stringify(spec)}: invalid mode ${JSON.stringify(mode)}: expected min or max`);
  const version = fields.get('version') ?? 'v1';
  if (version !== 'v1' && version !== 'v0.2') throw new BuildError('USAGE', `${what} ${JSON.stringify(spec)}: invalid provenance SLSA version: ${version}`, { hint: 'expected v1 or v0.2' });
  return { mode: mode === 'min' ? 'min' : 'max', version: version as SlsaVersion };
}

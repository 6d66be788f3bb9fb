/** Go's time.ParseDuration / Duration.String, for HEALTHCHECK flags (values in nanoseconds). */

const UNITS: Record<string, number> = { ns: 1, us: 1e3, 'µs': 1e3, 'μs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

export function parseGoDuration(s: string): number {
  const orig = s;
  let sign = 1;
  if (s.startsWith('-') || s.startsWith('+')) {
    if (s[0] === '-') sign = -1;
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') throw new Error(`time: invalid duration ${JSON.stringify(orig)}`);
  let total = 0;
  const re = /^(\d*\.?\d*)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)/;
  while (s !== '') {
    const m = re.exec(s);
    if (!m || m[1] === '' || m[1] === '.') {
      if (/^\d*\.?\d*$/.test(s)) throw new Error(`time: missing unit in duration ${JSON.stringify(orig)}`);
      throw new Error(`time: invalid duration ${JSON.stringify(orig)}`);
    }
    total += Number(m[1]) * UNITS[m[2]!]!;
    s = s.slice(m[0].length);
  }
  return sign * Math.round(total);
}

/** Go's Duration.String (`1m30s`, `500ms`, `0s`). */
export function formatGoDuration(ns: number): string {
  if (ns === 0) return '0s';
  const neg = ns < 0;
  let d = Math.abs(ns);
  let out: string;
  if (d < 1e9) {
    const [unit, div] = d < 1e3 ? ['ns', 1] : d < 1e6 ? ['µs', 1e3] : ['ms', 1e6];
    out = `${trimFrac(d / (div as number))}${unit}`;
  } else {
    const h = Math.floor(d / 3600e9);
    d -= h * 3600e9;
    const m = Math.floor(d / 60e9);
    d -= m * 60e9;
    out = `${h ? `${h}h` : ''}${h || m ? `${m}m` : ''}${trimFrac(d / 1e9)}s`;
  }
  return neg ? `-${out}` : out;
}

const trimFrac = (x: number): string => String(Number(x.toFixed(9)));

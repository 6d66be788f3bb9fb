import { isIP } from 'node:net';

/**
 * EXPOSE port specs (docker/go-connections nat.ParsePortSpec): host IP and host port parts are
 * dropped, ranges expand, the protocol defaults to tcp. Returns `port/proto` keys.
 */
export function parsePortSpec(raw: string): string[] {
  const parts = raw.split(':');
  const n = parts.length;
  let ip = '';
  let container = parts[n - 1]!;
  if (n === 3) ip = parts[0]!;
  else if (n > 3) ip = parts.slice(0, n - 2).join(':');
  void container;
  if (ip !== '') {
    const bare = ip.startsWith('[') && ip.endsWith(']') ? ip.slice(1, -1) : ip;
    if (isIP(bare) === 0) throw new Error(`invalid IP address: ${ip}`);
  }
  container = parts[n - 1]!;
  let proto = 'tcp';
  let port = container;
  const slash = container.split('/');
  if (slash[0] === '') port = '';
  else if (slash.length >= 2) {
    port = slash[0]!;
    if (slash[1] !== '') proto = slash[1]!.toLowerCase();
  }
  if (port === '') throw new Error(`invalid port: ${JSON.stringify(raw)}: no port specified`);
  const m = /^(\d+)(?:-(\d+))?$/.exec(port);
  if (!m) throw new Error(`invalid containerPort: ${port}`);
  const start = Number(m[1]);
  const end = m[2] === undefined ? start : Number(m[2]);
  if (start > 65535 || end > 65535 || end < start) throw new Error(`invalid containerPort: ${port}`);
  const out: string[] = [];
  for (let p = start; p <= end; p++) out.push(`${p}/${proto}`);
  return out;
}

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

/**
 * NODE_EXTRA_CA_CERTS, deferred to when it is needed. Node reads and parses the file it names,
 * and its own root store, at the start of every process: with Debian's bundle of 144
 * certificates (/etc/ssl/certs/ca-certificates.crt, as CI images and proxies set it) that is
 * 30 ms of a node start of 50, paid by every `tsbuild` command, though most never open a TLS
 * connection. The `tsbuild` command therefore moves the variable to `TSBUILD_NODE_EXTRA_CA_CERTS`
 * before node starts (the sh line at the top of dist/bin/tsbuild.cjs, see scripts/bundle.mjs),
 * and tsbuild's own TLS connections (every one is made through an undici Agent with
 * `agentOptions`) trust what node would have: its root store plus the file's certificates.
 * Programs tsbuild starts get the variable back (`childEnv`).
 */
export const DEFERRED_ENV = 'TSBUILD_NODE_EXTRA_CA_CERTS';

/**
 * The trust of each file, once per process as node's own is: an Agent is made per ADD <url>
 * step, and the file would be read, split and warned about again for each.
 */
const trustOf = new Map<string, { ca?: string[] }>();

/** What node does with NODE_EXTRA_CA_CERTS (a PEM file of one or more certificates), as TLS options; none when not deferred. */
export function deferredCaTrust(env: NodeJS.ProcessEnv = process.env): { ca?: string[] } {
  const file = env[DEFERRED_ENV];
  if (!file) return {};
  let trust = trustOf.get(file);
  if (!trust) trustOf.set(file, (trust = loadTrust(file)));
  return trust;
}

function loadTrust(file: string): { ca?: string[] } {
  let pems: string[];
  try {
    pems = readFileSync(file, 'latin1').match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  } catch (e) {
    // Node warns and goes on with its own store: so does tsbuild.
    process.stderr.write(`tsbuild: warning: ignoring extra certificates from NODE_EXTRA_CA_CERTS=${file}: ${(e as Error).message}\n`);
    return {};
  }
  // node:tls only now: loading it costs every command a few milliseconds.
  const { rootCertificates } = createRequire(import.meta.url)('node:tls') as typeof import('node:tls');
  return { ca: [...rootCertificates, ...pems] };
}

/** The environment for a program tsbuild starts (a credential helper): NODE_EXTRA_CA_CERTS as the user set it. */
export function childEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const file = env[DEFERRED_ENV];
  if (!file) return env;
  const { [DEFERRED_ENV]: _, ...rest } = env;
  return { ...rest, NODE_EXTRA_CA_CERTS: file };
}

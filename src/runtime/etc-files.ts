import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BindMount, ExecRequest } from './spec.js';

/** The DNS forwarder slirp4netns puts on a sandbox network (its network address + 3). */
export const SLIRP_DNS = '10.0.2.3';

/**
 * Writes the container's /etc/hosts (with `--add-host` entries last, as docker) and /etc/resolv.conf into `dir` (a per-container temp dir
 * the caller owns and removes) and returns them as bind mounts for `ExecRequest.mounts`.
 *
 * They are bound over the image's files rather than written into the rootfs so they never end
 * up in a layer. Read-write like BuildKit's: a RUN that edits them changes only the temp copy.
 * resolv.conf is the host's (`hostResolvConf`, default /etc/resolv.conf) made fit for the
 * network: see resolvConfFor.
 *
 * Written on the calling thread, before every RUN: as thread-pool calls, the read and the two
 * writes were ten round trips, one after another.
 */
export async function writeEtcFiles(
  dir: string,
  opts: { hostname: string; network: ExecRequest['network']; hostResolvConf?: string; extraHosts?: readonly { readonly host: string; readonly ip: string }[] },
): Promise<BindMount[]> {
  const hosts = join(dir, 'hosts');
  const resolv = join(dir, 'resolv.conf');
  writeFileSync(hosts, hostsFile(opts.hostname) + (opts.extraHosts ?? []).map((h) => `${h.ip}\t${h.host}\n`).join(''));
  writeFileSync(resolv, resolvConfFor(opts.network, await readHostResolvConf(opts.hostResolvConf)));
  return [
    { destination: '/etc/hosts', source: hosts, type: 'bind', options: ['rbind', 'rw'] },
    { destination: '/etc/resolv.conf', source: resolv, type: 'bind', options: ['rbind', 'rw'] },
  ];
}

/**
 * `mounts` with their /etc/resolv.conf (written by writeEtcFiles for a private network) replaced
 * by the host's file as is, written into `dir`: for a RUN that falls back to the host's network.
 */
export async function withHostResolvConf(mounts: readonly BindMount[], dir: string, hostResolvConf?: string): Promise<BindMount[]> {
  if (!mounts.some((m) => m.destination === '/etc/resolv.conf')) return [...mounts];
  const resolv = join(dir, 'resolv.conf');
  writeFileSync(resolv, resolvConfFor('host', await readHostResolvConf(hostResolvConf)));
  return mounts.map((m) => (m.destination === '/etc/resolv.conf' ? { ...m, source: resolv } : m));
}

/** The host's resolv.conf (default /etc/resolv.conf, the file slirp4netns reads too); '' when there is none. */
export async function readHostResolvConf(path = '/etc/resolv.conf'): Promise<string> {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    return '';
  }
}

/**
 * BuildKit's rule (executor/oci/resolvconf.go): `host` gets the host's file as is; any other
 * network loses the loopback nameservers (systemd-resolved's 127.0.0.53, dnsmasq's 127.0.0.1),
 * which would be the container itself there. For `sandbox` (slirp4netns) they become
 * 10.0.2.3 instead, which slirp forwards to the host's first nameserver (only port 53: other
 * ports of 10.0.2.3 are unreachable, checked in test/integration/run-network.test.ts); so does
 * a file naming none, as the host's resolver then uses 127.0.0.1. Where BuildKit falls back to
 * Google's servers we add nothing: no test or CI host is assumed to reach the internet.
 */
export function resolvConfFor(network: ExecRequest['network'], hostText: string): string {
  if (network === 'host') return hostText;
  if (network === 'sandbox') {
    if (nameservers(hostText).length === 0) return `${hostText}${hostText === '' || hostText.endsWith('\n') ? '' : '\n'}nameserver ${SLIRP_DNS}\n`;
    return withLocalNameserversAs(hostText, SLIRP_DNS);
  }
  return withoutLocalNameservers(hostText);
}

/** Docker's default hosts file, with the container's hostname on the loopback address. */
export function hostsFile(hostname: string): string {
  return [
    `127.0.0.1\tlocalhost ${hostname}`,
    '::1\tlocalhost ip6-localhost ip6-loopback',
    'fe00::0\tip6-localnet',
    'ff00::0\tip6-mcastprefix',
    'ff02::1\tip6-allnodes',
    'ff02::2\tip6-allrouters',
    '',
  ].join('\n');
}

const LOCAL_NAMESERVER = /^\s*nameserver\s+(127\.\d+\.\d+\.\d+|::1)\s*$/;

/** resolv.conf minus `nameserver` lines pointing at loopback (127.0.0.0/8, ::1). */
export function withoutLocalNameservers(text: string): string {
  return text
    .split('\n')
    .filter((l) => !LOCAL_NAMESERVER.test(l))
    .join('\n');
}

/** resolv.conf with its first loopback nameserver replaced by `ip`, in place (it keeps its rank), and the others dropped. */
function withLocalNameserversAs(text: string, ip: string): string {
  let replaced = false;
  return text
    .split('\n')
    .flatMap((l) => {
      if (!LOCAL_NAMESERVER.test(l)) return [l];
      if (replaced) return [];
      replaced = true;
      return [`nameserver ${ip}`];
    })
    .join('\n');
}

function nameservers(text: string): string[] {
  return [...text.matchAll(/^\s*nameserver\s+(\S+)/gm)].map((m) => m[1]!);
}

import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BindMount } from './spec.js';

/**
 * Writes the container's /etc/hosts (with `--add-host` entries last, as docker) and /etc/resolv.conf into `dir` (a per-container temp dir
 * the caller owns and removes) and returns them as bind mounts for `ExecRequest.mounts`.
 *
 * They are bound over the image's files rather than written into the rootfs so they never end
 * up in a layer. Read-write like BuildKit's: a RUN that edits them changes only the temp copy.
 * resolv.conf is the host's (`hostResolvConf`, default /etc/resolv.conf) as is for `host`
 * networking; for `none` its localhost nameservers are dropped, since in an empty network
 * namespace 127.0.0.x is the container itself.
 */
export async function writeEtcFiles(
  dir: string,
  opts: { hostname: string; network: 'host' | 'none'; hostResolvConf?: string; extraHosts?: readonly { readonly host: string; readonly ip: string }[] },
): Promise<BindMount[]> {
  const hosts = join(dir, 'hosts');
  const resolv = join(dir, 'resolv.conf');
  await writeFile(hosts, hostsFile(opts.hostname) + (opts.extraHosts ?? []).map((h) => `${h.ip}\t${h.host}\n`).join(''));
  let host = '';
  try {
    host = await readFile(opts.hostResolvConf ?? '/etc/resolv.conf', 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  await writeFile(resolv, opts.network === 'none' ? withoutLocalNameservers(host) : host);
  return [
    { destination: '/etc/hosts', source: hosts, type: 'bind', options: ['rbind', 'rw'] },
    { destination: '/etc/resolv.conf', source: resolv, type: 'bind', options: ['rbind', 'rw'] },
  ];
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

/** resolv.conf minus `nameserver` lines pointing at loopback (127.0.0.0/8, ::1). */
export function withoutLocalNameservers(text: string): string {
  return text
    .split('\n')
    .filter((l) => !/^\s*nameserver\s+(127\.\d+\.\d+\.\d+|::1)\s*$/.test(l))
    .join('\n');
}

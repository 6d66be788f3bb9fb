/**
 * Run as a script (`node sandbox-net-probe.js HOST PORT`), typically inside `unshare --user
 * --map-root-user --mount`: makes one sandbox network with SlirpNetworkProvider as tsbuild
 * would there, connects from inside it (nsenter + busybox nc) to HOST:PORT and to the slirp
 * gateway 10.0.2.2:PORT, tears it down, and prints one JSON line with what it saw.
 */
import { execFileSync } from 'node:child_process';
import { SlirpNetworkProvider } from '../../src/runtime/sandbox-network.js';
import type { BuildEvent } from '../../src/events.js';

const [host, port] = process.argv.slice(2);
const warnings: string[] = [];
const ctx = { signal: new AbortController().signal, events: { emit: (e: BuildEvent) => void (e.type === 'warning' && warnings.push(e.message)) } };
const provider = new SlirpNetworkProvider();
const inside = (path: string, args: string[]): string => {
  try {
    return execFileSync('nsenter', [`--net=${path}`, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    return `failed: ${(e as { stderr?: string }).stderr ?? String(e)}`;
  }
};
const net = await provider.acquire(ctx);
const out: Record<string, unknown> = { uid: process.getuid?.(), warnings };
if (net) {
  // /proc/net is the reader's network namespace (sysfs would show the mounter's).
  out.links = [...inside(net.path, ['cat', '/proc/net/dev']).matchAll(/^\s*([\w-]+):/gm)].map((m) => m[1]);
  out.host = inside(net.path, ['busybox', 'nc', '-w', '2', host!, port!]);
  out.gateway = inside(net.path, ['busybox', 'nc', '-w', '2', '10.0.2.2', port!]);
  await net.release(false);
}
await provider.close();
console.log(JSON.stringify(out));

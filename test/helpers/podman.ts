import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collect } from './cli.js';
import { mountsUnder } from './mounts.js';
import { tool } from './run-tool.js';

/** What a test reads from `podman image inspect` (podman 4.3: Healthcheck at the top, no Shell). */
export interface PodmanImage {
  readonly ManifestType: string;
  readonly Healthcheck?: { Test?: string[]; Interval?: number } | null;
  readonly Config: { Cmd?: string[] };
}

/**
 * A rootful podman with a private, throw-away storage (vfs: no mounts) and no events journal.
 * It only loads, pulls and inspects images: nothing here runs a container or makes a network.
 */
export interface ThrowawayPodman {
  load(archive: string): Promise<void>;
  /** `ref` without transport, e.g. `127.0.0.1:5000/x:1`; plain HTTP (`--tls-verify=false`). */
  pull(ref: string): Promise<void>;
  inspect(name: string): Promise<PodmanImage>;
  /** The image's Docker config as buildah (same storage) reads it, for what podman's inspect leaves out (Shell). */
  dockerConfig(name: string): Promise<{ Shell?: string[]; Healthcheck?: unknown }>;
  rmi(name: string): Promise<void>;
  dispose(): Promise<void>;
}

export async function podmanAvailable(): Promise<boolean> {
  return (await collect('podman', ['--version']).catch(() => ({ code: 127 }))).code === 0;
}

export async function throwawayPodman(): Promise<ThrowawayPodman> {
  const dir = await mkdtemp(join(tmpdir(), 'tsbuild-podman-'));
  const storage = ['--root', join(dir, 'root'), '--runroot', join(dir, 'runroot'), '--storage-driver', 'vfs'];
  const podman = (args: readonly string[]): Promise<string> => tool('podman', [...storage, '--cgroup-manager', 'cgroupfs', '--events-backend', 'none', ...args]);
  return {
    async load(archive) {
      await podman(['load', '-i', archive]);
    },
    async pull(ref) {
      await podman(['pull', '--tls-verify=false', `docker://${ref}`]);
    },
    async inspect(name) {
      return (JSON.parse(await podman(['image', 'inspect', name])) as PodmanImage[])[0]!;
    },
    async dockerConfig(name) {
      const out = JSON.parse(await tool('buildah', [...storage, 'inspect', '--type', 'image', name])) as { Docker: { config: { Shell?: string[]; Healthcheck?: unknown } } };
      return out.Docker.config;
    },
    async rmi(name) {
      await podman(['rmi', '-f', name]);
    },
    async dispose() {
      // vfs needs no mounts, but podman's runroot may still hold one (its shm): never leave any.
      for (const m of mountsUnder(dir).reverse()) await collect('umount', ['-l', m]);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

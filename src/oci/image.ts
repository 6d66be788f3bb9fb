import type { Digest } from './digest.js';
import type { ImageConfig as OciImageConfig } from '../../schemas/types/image-config.js';
import type { ImageManifest as OciImageManifest } from '../../schemas/types/image-manifest.js';
import type { ImageIndex as OciImageIndex } from '../../schemas/types/image-index.js';
import type { Descriptor as OciDescriptor } from '../../schemas/types/descriptor.js';

export type { OciImageManifest, OciImageIndex };

/** A descriptor whose digest is checked; otherwise the generated OCI type. */
export type Descriptor = Omit<OciDescriptor, 'digest'> & { digest: Digest };

export interface Healthcheck {
  Test?: string[];
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  StartInterval?: number;
  Retries?: number;
}

/**
 * The `config` section of an image config. The OCI schema's fields plus the ones docker and
 * BuildKit also record (Healthcheck, OnBuild, Shell), which the OCI spec allows as extensions.
 */
export type ContainerConfig = NonNullable<OciImageConfig['config']> & {
  Healthcheck?: Healthcheck;
  OnBuild?: string[] | null;
  Shell?: string[];
};

export type HistoryEntry = NonNullable<OciImageConfig['history']>[number];

export type ImageConfig = Omit<OciImageConfig, 'config' | 'rootfs'> & {
  config?: ContainerConfig;
  rootfs: { type: 'layers'; diff_ids: Digest[] };
};

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** Host platform in OCI terms (GOARCH names). */
export function hostPlatform(): Platform {
  const arch: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  return { os: 'linux', architecture: arch[process.arch] ?? process.arch };
}

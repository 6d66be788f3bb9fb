import type { Ctx } from '../ctx.js';
import type { Digest } from '../oci/digest.js';
import type { ContentStore } from '../oci/content-store.js';
import type { ImageLayout } from '../oci/image-layout.js';
import type { RootDirs } from '../root-dirs.js';
import type { LayerStore } from '../runtime/layer-store.js';
import type { CommandRunner } from '../runtime/command-runner.js';
import type { Snapshot } from '../runtime/snapshotter.js';
import type { ExpansionLimits } from '../oci/layer/expansion-guard.js';

/**
 * What the op handlers need from the machine: stores and the runtime, passed in explicitly
 * (the solver never constructs them; src/orchestrator wires the real ones).
 */
export interface Worker {
  readonly dirs: RootDirs;
  /** The local image store (an OCI layout); FROM looks here first. */
  readonly images: ImageLayout;
  readonly blobs: ContentStore;
  readonly layers: LayerStore;
  /** Runs one process in a prepared rootfs; a non-zero exit is a result, not an error. */
  readonly sandbox: Pick<CommandRunner, 'run' | 'prepare' | 'cgroups'>;
  /** How far an ADD archive or an image layer may expand (DEFAULT_EXPANSION_LIMITS when unset). */
  readonly expansionLimits?: ExpansionLimits;
  /** A root filesystem of `lower` for one op (the isolation mode's Snapshotter; see src/runtime/isolation.ts). */
  mount(lower: readonly Digest[], opts: { readonly?: boolean }, ctx: Ctx): Promise<Snapshot>;
  /**
   * No step will run any more: starts, in the background, what the steps leave to finish (the
   * RUN networks' teardown, the new layers' flush; see CommandRunner.close, Snapshotter.flush),
   * so that it overlaps the image's assembly. The owner's close waits for it and reports its failure.
   */
  stepsDone?(): void;
  /**
   * At most `n` more RUNs will need a network: tears down in the background the RUN networks
   * kept beyond that (all with 0; the owner's close waits for it), so that it overlaps the
   * build's remaining work instead of ending it.
   */
  networksNeeded?(n: number): void;
}

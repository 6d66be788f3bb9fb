import type { Ctx } from '../ctx.js';
import { BuildError } from '../errors.js';
import type { Descriptor } from '../oci/image.js';
import { readImage } from '../oci/image-reader.js';
import { exportDockerArchive } from '../exporter/docker-archive.js';
import { toDockerMediaTypes } from '../exporter/docker-media-types.js';
import { usesOciMediaTypes, type ExportTarget, type ImageTarget } from '../exporter/export-target.js';
import { exportLocal } from '../exporter/local.js';
import { writeAttestationFiles, type AttestationFile } from '../exporter/local-provenance.js';
import { exportRootfsTar } from '../exporter/rootfs-tar.js';
import { exportOciArchive } from '../exporter/oci-archive.js';
import { exportOciLayout } from '../exporter/oci-layout.js';
import { exportRegistry } from '../exporter/registry.js';
import { compressImage, compressedLayersDir } from '../exporter/compress-image.js';
import { DEFAULT_COMPRESSION } from '../oci/layer/layer-compression.js';
import type { RegistryClient } from '../remote/registry-client.js';
import type { Worker } from '../solver/worker.js';

/**
 * Sends the built image to one `--output` target; names default to the build's `-t` tags.
 * `registry` serves type=registry; `fileTime` (SOURCE_DATE_EPOCH with rewrite-timestamp) is
 * every file's time in a local or tar output, as BuildKit's local and tar exporters set it.
 * `attestationFiles` (provenance.json…) go beside the files of a local or tar output.
 * The image outputs get the stored (OCI-typed) image with its layers compressed as the output
 * asks (compress-image.ts), or its Docker-typed copy (`oci-mediatypes`).
 * Returns the manifest or index the output holds (the stored one for local and tar).
 */
export async function exportImage(
  worker: Worker,
  stored: Descriptor,
  target: ExportTarget,
  tags: readonly string[],
  ctx: Ctx,
  registry?: RegistryClient,
  fileTime?: Date,
  attestationFiles: readonly AttestationFile[] = [],
): Promise<Descriptor> {
  const mtime = fileTime && Math.floor(fileTime.getTime() / 1000);
  switch (target.type) {
    case 'oci': {
      const names = target.names ?? tags;
      const manifest = await withMediaTypes(worker, await compressed(worker, stored, target, ctx), target, ctx);
      await (target.tar ? exportOciArchive(worker.blobs, manifest, target.dest, names, ctx) : exportOciLayout(worker.blobs, manifest, target.dest, names, ctx));
      return manifest;
    }
    case 'docker': {
      // A docker archive holds one image (this platform's), never an index or its attestations: convert only that one.
      const one = await compressed(worker, (await readImage(worker.blobs, stored)).manifestDescriptor, target, ctx);
      const image = usesOciMediaTypes(target) ? one : await withMediaTypes(worker, one, target, ctx);
      await exportDockerArchive(worker.blobs, image, target.dest, target.names ?? tags, ctx);
      return image;
    }
    case 'local':
      await exportLocal(worker.blobs, stored, target.dest, ctx, worker.expansionLimits, mtime, target.platformSplit);
      await writeAttestationFiles(target.dest, attestationFiles, mtime);
      return stored;
    case 'tar':
      await exportRootfsTar(worker, stored, target.dest, ctx, mtime, target.platformSplit, attestationFiles);
      return stored;
    case 'registry': {
      if (!registry) throw new BuildError('INTERNAL', '--output type=registry: no registry client was configured for this build');
      return (await exportRegistry(registry, worker.images, await withMediaTypes(worker, await compressed(worker, stored, target, ctx), target, ctx), target.name, ctx)).descriptor;
    }
    default: {
      const never: never = target;
      throw new BuildError('INTERNAL', `unknown export target ${JSON.stringify(never)}`);
    }
  }
}

/** The image with its layers in the output's compression (default gzip, as BuildKit's exporters). */
function compressed(worker: Worker, manifest: Descriptor, target: ImageTarget, ctx: Ctx): Promise<Descriptor> {
  return compressImage(worker.blobs, compressedLayersDir(worker.dirs), manifest, target.compression ?? DEFAULT_COMPRESSION, ctx.signal);
}

function withMediaTypes(worker: Worker, manifest: Descriptor, target: ImageTarget, ctx: Ctx): Promise<Descriptor> {
  return usesOciMediaTypes(target) ? Promise.resolve(manifest) : toDockerMediaTypes(worker.blobs, manifest, ctx.signal);
}

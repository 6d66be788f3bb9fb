import { randomBytes } from 'node:crypto';
import type { BuildPlan } from '../frontend/compile.js';
import { digestHex } from '../oci/digest.js';
import type { Descriptor, Platform } from '../oci/image.js';
import { MediaType } from '../oci/media-types.js';
import { formatPlatform } from '../oci/platform.js';
import { parseReference } from '../oci/reference.js';
import type { Vertex } from '../solver/graph.js';
import type { Worker } from '../solver/worker.js';
import { ATTESTATION_MANIFEST, ATTESTATION_REF_DIGEST, ATTESTATION_REF_TYPE } from '../oci/attestation.js';

/** `--provenance` (BuildKit's `--attest type=provenance`): min records the inputs, max the build steps too. */
export type ProvenanceMode = 'min' | 'max';

const IN_TOTO = 'application/vnd.in-toto+json';
const SLSA_V02 = 'https://slsa.dev/provenance/v0.2';

/** What the provenance statement says about one build, besides the image it is about. */
export interface ProvenanceInput {
  readonly mode: ProvenanceMode;
  readonly plan: BuildPlan;
  readonly platform: Platform;
  readonly names: readonly string[];
  readonly buildArgs: Readonly<Record<string, string>>;
  readonly target?: string;
  readonly dockerfile: { readonly name: string; readonly text: string };
  readonly startedOn: Date;
  readonly finishedOn: Date;
}

/**
 * Writes a SLSA v0.2 provenance attestation for `image` as BuildKit attaches it: an in-toto
 * statement (subject: the image manifest) as the one layer of an attestation manifest, whose
 * index entry has platform unknown/unknown and points back at the image. Base images are the
 * materials; build args, target and the Dockerfile name the invocation; `max` adds the build
 * steps and the Dockerfile itself. Returns the index entry.
 */
export async function writeProvenance(worker: Worker, image: Descriptor, input: ProvenanceInput): Promise<Descriptor & { platform: Platform }> {
  const platform = formatPlatform(input.platform);
  const subjectName = input.names[0] ? purl(input.names[0], platform) : `pkg:docker/unnamed?platform=${encodeURIComponent(platform)}`;
  const args: Record<string, string> = {};
  for (const [k, v] of Object.entries(input.buildArgs)) args[`build-arg:${k}`] = v;
  if (input.target) args.target = input.target;
  const statement = {
    _type: 'https://in-toto.io/Statement/v0.1',
    predicateType: SLSA_V02,
    subject: [{ name: subjectName, digest: { sha256: digestHex(image.digest) } }],
    predicate: {
      builder: { id: '' },
      buildType: 'https://mobyproject.org/buildkit@v1',
      materials: materials(input.plan.target),
      invocation: {
        configSource: { entryPoint: input.dockerfile.name },
        parameters: { frontend: 'dockerfile.v0', args, locals: [{ name: 'context' }, { name: 'dockerfile' }] },
        environment: { platform },
      },
      ...(input.mode === 'max' ? { buildConfig: { steps: steps(input.plan.target) } } : {}),
      metadata: {
        buildInvocationID: randomBytes(16).toString('hex'),
        buildStartedOn: input.startedOn.toISOString(),
        buildFinishedOn: input.finishedOn.toISOString(),
        completeness: { parameters: input.mode === 'max', environment: true, materials: false },
        reproducible: false,
        ...(input.mode === 'max' ? { 'https://mobyproject.org/buildkit@v1#metadata': { source: { infos: [{ filename: input.dockerfile.name, data: Buffer.from(input.dockerfile.text).toString('base64') }] } } } : {}),
      },
    },
  };
  const layer = await worker.blobs.putBytes(JSON.stringify(statement));
  const config = await worker.blobs.putBytes(
    JSON.stringify({ architecture: 'unknown', os: 'unknown', config: {}, rootfs: { type: 'layers', diff_ids: [layer.digest] } }),
  );
  const manifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, digest: config.digest, size: config.size },
    layers: [{ mediaType: IN_TOTO, digest: layer.digest, size: layer.size, annotations: { 'in-toto.io/predicate-type': SLSA_V02 } }],
  };
  const m = await worker.blobs.putBytes(JSON.stringify(manifest));
  return {
    mediaType: MediaType.ociManifest,
    digest: m.digest,
    size: m.size,
    annotations: { [ATTESTATION_REF_DIGEST]: image.digest, [ATTESTATION_REF_TYPE]: ATTESTATION_MANIFEST },
    platform: { os: 'unknown', architecture: 'unknown' },
  };
}

/** `pkg:docker/<name>@<tag>?platform=…`, the package URL BuildKit names images with. */
function purl(name: string, platform: string): string {
  const ref = parseReference(name);
  const path = ref.familiar.split(/[:@]/)[0]!;
  return `pkg:docker/${path}@${ref.tag ?? 'latest'}?platform=${encodeURIComponent(platform)}`;
}

/** Every vertex below `target`, each once, inputs first. */
function walk(target: Vertex | undefined): Vertex[] {
  const seen = new Map<string, Vertex>();
  const visit = (v: Vertex) => {
    if (seen.has(v.digest)) return;
    for (const i of v.inputs) visit(i);
    seen.set(v.digest, v);
  };
  if (target) visit(target);
  return [...seen.values()];
}

/** Base images (by manifest digest) and downloaded files (by --checksum when given), each once. */
function materials(target: Vertex | undefined): { uri: string; digest?: { sha256: string } }[] {
  const out = walk(target).flatMap((v) => {
    if (v.op.kind === 'image' && v.op.digest) return [{ uri: purl(v.op.ref, formatPlatform(v.op.platform)), digest: { sha256: digestHex(v.op.digest) } }];
    if (v.op.kind === 'http') return [{ uri: v.op.url, ...(v.op.checksum ? { digest: { sha256: v.op.checksum.replace(/^sha256:/, '') } } : {}) }];
    return [];
  });
  return out.filter((m, i) => out.findIndex((x) => x.uri === m.uri) === i);
}

function steps(target: Vertex | undefined): { id: string; name: string; op: string; inputs: string[] }[] {
  return walk(target).map((v) => ({ id: v.digest, name: v.meta.name, op: v.op.kind, inputs: v.inputs.map((i) => i.digest) }));
}

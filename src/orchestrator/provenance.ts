import { randomBytes } from 'node:crypto';
import type { BuildPlan } from '../frontend/compile.js';
import { digestHex } from '../oci/digest.js';
import type { Descriptor, Platform } from '../oci/image.js';
import { MediaType } from '../oci/media-types.js';
import { formatPlatform } from '../oci/platform.js';
import { parseReference } from '../oci/reference.js';
import type { Vertex } from '../solver/graph.js';
import type { Worker } from '../solver/worker.js';
import { ociLayoutSpec } from './named-contexts.js';
import { ATTESTATION_MANIFEST, ATTESTATION_REF_DIGEST, ATTESTATION_REF_TYPE } from '../oci/attestation.js';

/** `--provenance` (BuildKit's `--attest type=provenance`): min records the inputs, max the build steps too. */
export type ProvenanceMode = 'min' | 'max';
/** The SLSA provenance predicate version; BuildKit's default is v1 (frontend/attestations/parse.go). */
export type SlsaVersion = 'v1' | 'v0.2';

export interface ProvenanceOptions {
  readonly mode: ProvenanceMode;
  readonly version: SlsaVersion;
}

const IN_TOTO = 'application/vnd.in-toto+json';
/** ITE-6 v1 statements, for either predicate (BuildKit's exporter/attestation/make.go). */
const STATEMENT_V1 = 'https://in-toto.io/Statement/v1';
const PREDICATE_TYPE: Readonly<Record<SlsaVersion, string>> = { v1: 'https://slsa.dev/provenance/v1', 'v0.2': 'https://slsa.dev/provenance/v0.2' };
const BUILD_TYPE: Readonly<Record<SlsaVersion, string>> = {
  v1: 'https://github.com/moby/buildkit/blob/master/docs/attestations/slsa-definitions.md',
  'v0.2': 'https://mobyproject.org/buildkit@v1',
};

/** A context given as a URL: its spec as written, and for git the repository (`URL#REF`) and commit. */
export interface RemoteContext {
  readonly uri: string;
  readonly git?: { readonly uri: string; readonly commit: string };
}

/** What the provenance statement says about one build, besides the image it is about. */
export interface ProvenanceInput extends ProvenanceOptions {
  readonly plan: BuildPlan;
  readonly platform: Platform;
  /** The platform of the machine that built it (`builderPlatform`). */
  readonly builderPlatform: Platform;
  readonly names: readonly string[];
  readonly buildArgs: Readonly<Record<string, string>>;
  readonly labels: Readonly<Record<string, string>>;
  /** `--build-context NAME=VALUE`, recorded as BuildKit's `context:NAME` args (credentials redacted). */
  readonly buildContexts: Readonly<Record<string, string>>;
  /** mode=max: the layer blobs of each step's result, by vertex digest (bottom to top). */
  readonly layerChains?: ReadonlyMap<string, readonly Descriptor[]>;
  /** Absent: the context and the Dockerfile are local directories (BuildKit's locals). */
  readonly remoteContext?: RemoteContext;
  readonly target?: string;
  readonly dockerfile: { readonly name: string; readonly text: string };
  readonly startedOn: Date;
  readonly finishedOn: Date;
}

/**
 * The frontend request's args as BuildKit records them (llbsolver/provenance/predicate.go
 * FilterArgs, then scrubMinRequest): build args, labels, target and named contexts (URL
 * credentials as xxxxx); mode=min drops build args and labels, which makes the request
 * incomplete. Returns the args and whether they are the whole request.
 */
function requestArgs(input: ProvenanceInput): { args: Record<string, string>; complete: boolean } {
  const args: Record<string, string> = {};
  let complete = true;
  const scrub = input.mode === 'min';
  for (const [k, v] of Object.entries(input.buildArgs)) scrub ? (complete = false) : (args[`build-arg:${k}`] = v);
  for (const [k, v] of Object.entries(input.labels)) scrub ? (complete = false) : (args[`label:${k}`] = v);
  if (input.target) args.target = input.target;
  for (const [k, v] of Object.entries(input.buildContexts)) args[`context:${k}`] = redactCredentials(v);
  return { args, complete };
}

/** BuildKit's urlutil.RedactCredentials: a URL's user and password become xxxxx. */
function redactCredentials(v: string): string {
  try {
    const u = new URL(v);
    if (!u.username && !u.password) return v;
    u.username = 'xxxxx';
    if (u.password) u.password = 'xxxxx';
    return u.toString();
  } catch {
    return v;
  }
}

/** The statement's predicate in the SLSA version asked for, as BuildKit writes each. */
function predicate(input: ProvenanceInput): Record<string, unknown> {
  const platform = formatPlatform(input.platform);
  const { args, complete } = requestArgs(input);
  const max = input.mode === 'max';
  // BuildKit's local sources: the context and Dockerfile directories unless the context is a URL,
  // and every directory named context. Any of them makes the dependencies incomplete (and the
  // build not hermetic, as does a RUN with network access).
  const dirContexts = Object.entries(input.buildContexts).filter(([, v]) => !/^(docker-image|oci-layout):\/\//.test(v));
  const locals = [...(input.remoteContext ? [] : [{ name: 'context' }, { name: 'dockerfile' }]), ...dirContexts.map(([name]) => ({ name }))];
  const completeDeps = locals.length === 0;
  const hermetic = completeDeps && !networkAccess(input.plan.target);
  const configUri = input.remoteContext ? { uri: redactCredentials(input.remoteContext.uri) } : {};
  const { secrets, ssh } = max ? runMountIds(input.plan.target) : { secrets: [], ssh: [] };
  const request = {
    frontend: 'dockerfile.v0',
    ...(Object.keys(args).length ? { args } : {}),
    ...(secrets.length ? { secrets } : {}),
    ...(ssh.length ? { ssh } : {}),
    ...(locals.length ? { locals } : {}),
  };
  const source = {
    locations: locations(input.plan.target),
    infos: [{ filename: input.dockerfile.name, language: 'Dockerfile', data: Buffer.from(input.dockerfile.text).toString('base64') }],
  };
  const buildConfig = { llbDefinition: steps(input.plan.target) };
  // BuildKit keys them step<index in llbDefinition>:<output>, each a list of layer chains.
  const layers = Object.fromEntries(
    walk(input.plan.target).flatMap((v, i) => {
      const chain = input.layerChains?.get(v.digest);
      return chain ? [[`step${i}:0`, [chain]]] : [];
    }),
  );
  const buildkitMetadata = max ? { source, ...(Object.keys(layers).length ? { layers } : {}) } : {};
  const git = input.remoteContext?.git;
  const deps = [
    ...materials(input.plan.target, ociLayoutNames(input.buildContexts)),
    // The object format shows in the commit's length: sha1 (40 hex) or sha256 (64).
    ...(git ? [{ uri: redactCredentials(git.uri), digest: { [git.commit.length === 64 ? 'sha256' : 'sha1']: git.commit } }] : []),
  ];
  const invocationID = randomBytes(16).toString('hex');
  if (input.version === 'v1') {
    return {
      buildDefinition: {
        buildType: BUILD_TYPE.v1,
        externalParameters: { configSource: { ...configUri, path: input.dockerfile.name }, request },
        internalParameters: { ...(max ? { buildConfig } : {}), builderPlatform: formatPlatform(input.builderPlatform) },
        ...(deps.length ? { resolvedDependencies: deps } : {}),
      },
      runDetails: {
        builder: { id: '' },
        metadata: {
          invocationID,
          startedOn: input.startedOn.toISOString(),
          finishedOn: input.finishedOn.toISOString(),
          buildkit_metadata: buildkitMetadata,
          buildkit_completeness: { request: complete, resolvedDependencies: completeDeps },
          ...(hermetic ? { buildkit_hermetic: true } : {}),
        },
      },
    };
  }
  return {
    builder: { id: '' },
    buildType: BUILD_TYPE['v0.2'],
    materials: deps,
    invocation: { configSource: { ...configUri, entryPoint: input.dockerfile.name }, parameters: request, environment: { platform } },
    ...(max ? { buildConfig } : {}),
    metadata: {
      buildInvocationID: invocationID,
      buildStartedOn: input.startedOn.toISOString(),
      buildFinishedOn: input.finishedOn.toISOString(),
      completeness: { parameters: complete, environment: true, materials: completeDeps },
      reproducible: false,
      'https://mobyproject.org/buildkit@v1#metadata': buildkitMetadata,
      ...(hermetic ? { 'https://mobyproject.org/buildkit@v1#hermetic': true } : {}),
    },
  };
}

/** An in-toto statement about `subject` carrying the provenance predicate `input` asks for. */
export function provenanceStatement(subject: readonly { name: string; digest: { sha256: string } }[], input: ProvenanceInput): Record<string, unknown> {
  return { _type: STATEMENT_V1, predicateType: PREDICATE_TYPE[input.version], subject, predicate: predicate(input) };
}

/**
 * Writes a SLSA provenance attestation (v1 unless v0.2 is asked for) for `image` as BuildKit
 * attaches it: an in-toto statement (subject: the image manifest) as the one layer of an
 * attestation manifest, whose index entry has platform unknown/unknown and points back at the
 * image. Base images are the resolved dependencies (materials); build args, labels, target and
 * the Dockerfile name the request; `max` adds the build steps and the Dockerfile itself.
 * Returns the index entry.
 */
export async function writeProvenance(worker: Worker, image: Descriptor, input: ProvenanceInput): Promise<Descriptor & { platform: Platform }> {
  const platform = formatPlatform(input.platform);
  const subjectName = input.names[0] ? purl(input.names[0], platform) : `pkg:docker/unnamed?platform=${encodeURIComponent(platform)}`;
  const statement = provenanceStatement([{ name: subjectName, digest: { sha256: digestHex(image.digest) } }], input);
  const layer = await worker.blobs.putBytes(JSON.stringify(statement));
  const config = await worker.blobs.putBytes(
    JSON.stringify({ architecture: 'unknown', os: 'unknown', config: {}, rootfs: { type: 'layers', diff_ids: [layer.digest] } }),
  );
  const manifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, digest: config.digest, size: config.size },
    layers: [{ mediaType: IN_TOTO, digest: layer.digest, size: layer.size, annotations: { 'in-toto.io/predicate-type': PREDICATE_TYPE[input.version] } }],
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

/** The image ref an `oci-layout://` named context's image op carries → the context's name. */
function ociLayoutNames(contexts: Readonly<Record<string, string>>): ReadonlyMap<string, string> {
  return new Map(Object.entries(contexts).filter(([, v]) => v.startsWith('oci-layout://')).map(([name, v]) => [ociLayoutSpec(v).ref, name]));
}

/**
 * Base images (by manifest digest) and downloaded files (by --checksum when given), each once.
 * An image from an OCI layout is BuildKit's local image source: `pkg:oci/<context name>` with its
 * digest and platform as qualifiers (util/purl RefToPURL of the name with the digest).
 */
function materials(target: Vertex | undefined, layouts: ReadonlyMap<string, string>): { uri: string; digest?: Record<string, string> }[] {
  const out = walk(target).flatMap((v) => {
    if (v.op.kind === 'image' && v.op.digest && v.op.ref.startsWith('oci-layout://')) {
      const name = layouts.get(v.op.ref) ?? 'unnamed';
      const qualifiers = `digest=${encodeURIComponent(v.op.digest)}&platform=${encodeURIComponent(formatPlatform(v.op.platform))}`;
      return [{ uri: `pkg:oci/${name}?${qualifiers}`, digest: { sha256: digestHex(v.op.digest) } }];
    }
    if (v.op.kind === 'image' && v.op.digest) return [{ uri: purl(v.op.ref, formatPlatform(v.op.platform)), digest: { sha256: digestHex(v.op.digest) } }];
    if (v.op.kind === 'http') return [{ uri: v.op.url, ...(v.op.checksum ? { digest: { sha256: v.op.checksum.replace(/^sha256:/, '') } } : {}) }];
    return [];
  });
  return out.filter((m, i) => out.findIndex((x) => x.uri === m.uri) === i);
}

function steps(target: Vertex | undefined): { id: string; name: string; op: string; inputs: string[] }[] {
  return walk(target).map((v) => ({ id: v.digest, name: v.meta.name, op: v.op.kind, inputs: v.inputs.map((i) => i.digest) }));
}

/**
 * The secrets and ssh agents RUN mounts use, each id once in order of use, as BuildKit's request
 * records them (mode=max only): optional unless a mount says required=true.
 */
function runMountIds(target: Vertex | undefined): { secrets: { id: string; optional: boolean }[]; ssh: { id: string; optional: boolean }[] } {
  const secrets = new Map<string, boolean>();
  const ssh = new Map<string, boolean>();
  for (const v of walk(target)) {
    if (v.op.kind !== 'exec') continue;
    for (const m of v.op.mounts ?? []) {
      const seen = m.type === 'secret' ? secrets : m.type === 'ssh' ? ssh : undefined;
      if (seen && (m.type === 'secret' || m.type === 'ssh')) seen.set(m.id, (seen.get(m.id) ?? true) && !m.required);
    }
  }
  const list = (m: Map<string, boolean>) => [...m].map(([id, optional]) => ({ id, optional }));
  return { secrets: list(secrets), ssh: list(ssh) };
}

/**
 * BuildKit's source map (pb.Locations per step): the Dockerfile lines each step came from, so a
 * reader can tell which instruction made which step. Steps without a line (the context) are left out.
 */
function locations(target: Vertex | undefined): Record<string, { locations: { ranges: { start: { line: number }; end: { line: number } }[] }[] }> {
  const out: Record<string, { locations: { ranges: { start: { line: number }; end: { line: number } }[] }[] }> = {};
  for (const v of walk(target)) {
    const loc = v.meta.location;
    if (loc) out[v.digest] = { locations: [{ ranges: [{ start: { line: loc.line }, end: { line: loc.endLine ?? loc.line } }] }] };
  }
  return out;
}

/** Whether any RUN of the build had a network (BuildKit's NetworkAccess: anything but none). */
function networkAccess(target: Vertex | undefined): boolean {
  return walk(target).some((v) => v.op.kind === 'exec' && v.op.network !== 'none');
}

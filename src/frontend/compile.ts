import { BuildError, isAbortError, type SourceLocation } from '../errors.js';
import type { Ctx } from '../ctx.js';
import type { ImageConfig, Platform } from '../oci/image.js';
import { formatPlatform } from '../oci/platform.js';
import { CHECK_BUILD_ARG, checksAsError, dockerfileChecks, type CheckWarning } from './build-checks.js';
import { parseCheckOptions, ruleEnabled, withComments } from './check-rules.js';
import { CompileFailure } from './compile-failure.js';
import { CopyIgnoredCheck } from './copy-ignored.js';
import { makeVertex, type RunLimits, type Ulimit, type Vertex } from '../solver/graph.js';
import { parseDockerignore } from './dockerignore.js';
import { parseInstruction, type Instruction } from './instructions.js';
import { editDistance, parseDockerfile } from './parse.js';
import { ShellLexer, ShellLexError } from './shell-lexer.js';
import { convertStage, type ResolvedImage, type StageSource } from './convert-stage.js';
import { resolveSourceDateEpoch, withResolvedEpoch } from './source-date-epoch.js';
import { PLATFORM_ARGS, type ConvertEnv, type ImageResolver, type StageState, type Warning } from './stage-state.js';
import { SANDBOX_HOSTNAME_ARG } from './convert-run.js';

export type { ImageResolver } from './stage-state.js';

export interface CompileOptions {
  /** Used in error locations only. */
  dockerfilePath: string;
  /** Absolute path of the build context. */
  contextDir: string;
  /** .dockerignore text, '' if none. */
  dockerignore: string;
  buildArgs: Readonly<Record<string, string>>;
  target?: string;
  /** The target platform (TARGETPLATFORM; FROM without --platform resolves images for it). */
  platform: Platform;
  /** The platform the build runs on (BUILDPLATFORM); default: `platform`. */
  buildPlatform?: Platform;
  /** Prefix step names with the platform: several platforms are built at once. */
  labelPlatform?: boolean;
  /** Why RUN can't execute for a platform on this machine (undefined when it can). */
  cannotRun?: (p: Platform) => string | undefined;
  /** `--network`: RUN's network unless it says otherwise; default `sandbox` (a private network namespace). */
  network?: 'sandbox' | 'host' | 'none';
  /** `--allow network.host`: the entitlement RUN needs for the host's network (`--network=host`). */
  allowNetworkHost?: boolean;
  /** `--ulimit` and `--shm-size`: resource limits and /dev/shm size of every RUN. */
  ulimits?: readonly Ulimit[];
  shmSize?: number;
  /** `--memory`, `--cpus`, `--pids-limit`…: cgroup limits of every RUN. */
  limits?: RunLimits;
  /** `--add-host`: extra /etc/hosts entries for every RUN. */
  extraHosts?: readonly { readonly host: string; readonly ip: string }[];
  labels?: Readonly<Record<string, string>>;
  /** `--build-context NAME=…`: replaces the stage or image NAME in FROM and in --from. */
  namedContexts?: ReadonlyMap<string, NamedContext>;
  /** SOURCE_DATE_EPOCH=context: the context's source time (its last commit); asked only then. */
  contextTime?: () => Promise<Date | undefined>;
  /** SOURCE_DATE_EPOCH=<stage> (FROM scratch + one ADD <URL>): that URL's Last-Modified; asked only then. */
  urlTime?: (url: string) => Promise<Date | undefined>;
  /** Convert (and check) every stage, not only those the target needs: `--check` without a target. */
  allStages?: boolean;
}

/** A named build context: a directory (read like the main context) or an image reference. */
/**
 * A `--build-context`: a directory (with its own `.dockerignore` text, '' for none), an image ref,
 * or `docker-image://scratch`, which BuildKit (dockerui namedcontext.go) takes as an empty state.
 */
export type NamedContext =
  | { readonly kind: 'dir'; readonly dir: string; readonly dockerignore: string }
  | { readonly kind: 'image'; readonly ref: string }
  | { readonly kind: 'scratch' };

export interface BuildPlan {
  /** Root filesystem of the target stage; undefined = empty scratch. */
  readonly target?: Vertex;
  /** Base config + this build's changes, history included; rootfs.diff_ids is [] (filled after solving). */
  readonly config: ImageConfig;
  /** History entries of steps that may add a layer; the builder sets empty_layer when the vertex added none. */
  readonly layerSteps: readonly { readonly historyIndex: number; readonly vertex: Vertex }[];
  /** `layerSteps` from this index on are the target stage's own; those before, of the stages it is built FROM. */
  readonly stageStepsFrom?: number;
  readonly stage: { readonly name?: string; readonly index: number };
  readonly warnings: readonly { message: string; location?: SourceLocation }[];
  /** The build-check findings among them (kept by `# check=`), in line order: what `--check` lists. */
  readonly checks: readonly CheckWarning[];
  /** SOURCE_DATE_EPOCH resolved (build arg, else the global ARG default): the time of this build's steps and image. */
  readonly sourceDateEpoch?: Date;
}

/**
 * Compiles a Dockerfile to a build graph plus image config (BuildKit dockerfile2llb semantics,
 * Dockerfile 1.x). No filesystem I/O: base images are looked up through `resolver`, and only
 * the stages the target needs are converted (other stages' images are never resolved).
 * Every user error is a BuildError located in `opts.dockerfilePath`.
 */
export async function compileDockerfile(source: { path: string; text: string }, opts: CompileOptions, resolver: ImageResolver, ctx: Ctx): Promise<BuildPlan> {
  const file = opts.dockerfilePath || source.path;
  const warnings: Warning[] = [];
  const checks: CheckWarning[] = [];
  try {
    return await compile(source, file, opts, resolver, ctx, warnings, checks);
  } catch (e) {
    // BuildKit reports the warnings found before an error, then the error.
    if (e instanceof BuildError && !(e instanceof CompileFailure) && checks.length + warnings.length > 0) throw new CompileFailure(e, warnings, sortByLine(checks));
    throw e;
  }
}

const sortByLine = <T extends { readonly location: SourceLocation }>(l: readonly T[]): T[] => [...l].sort((a, b) => a.location.line - b.location.line);

/** Rules BuildKit checks while it parses instructions: found before a parse error stops it. */
const PARSE_TIME_RULES = new Set(['NoEmptyContinuation', 'MaintainerDeprecated', 'StageNameCasing', 'FromAsCasing', 'InvalidDefinitionDescription']);

async function compile(
  source: { path: string; text: string },
  file: string,
  opts: CompileOptions,
  resolver: ImageResolver,
  ctx: Ctx,
  warnings: Warning[],
  checks: CheckWarning[],
): Promise<BuildPlan> {
  const parsed = parseDockerfile(source.text, file);
  const errors: BuildError[] = [...parsed.errors];
  checkDirectives(source.text, file, errors, warnings);
  const instructions: Instruction[] = [];
  if (parsed.instructions.length > MAX_INSTRUCTIONS) {
    const location = parsed.instructions[MAX_INSTRUCTIONS]!.location;
    throw new BuildError('DOCKERFILE_SYNTAX', `more than ${MAX_INSTRUCTIONS} instructions`, { location, hint: 'split the build into several Dockerfiles' });
  }
  for (const raw of parsed.instructions) {
    try {
      instructions.push(parseInstruction(raw, parsed.escapeToken));
    } catch (e) {
      if (e instanceof BuildError) errors.push(e);
      else throw e;
    }
  }
  /** A build-check finding, reported as a warning too. */
  const report = (w: CheckWarning) => {
    checks.push(w);
    warnings.push({ message: `${w.rule}: ${w.message}`, location: w.location, rule: w.rule });
  };
  if (errors.length > 0) {
    errors.sort((a, b) => (a.location?.line ?? 0) - (b.location?.line ?? 0));
    const first = errors[0]!;
    // The findings BuildKit's parser made on the instructions before the one that failed.
    const errorLine = first.location?.line ?? 0;
    try {
      const before = dockerfileChecks(source.text, file, instructions.filter((i) => i.location.line < errorLine), parsed.warnings, opts.buildArgs);
      for (const w of before.found) if (PARSE_TIME_RULES.has(w.rule) && w.location.line < errorLine) report(w);
    } catch {
      // A bad check configuration: the parse error is the one to report.
    }
    if (errors.length === 1) throw first;
    const more = errors.slice(1).map((e) => `line ${e.location?.line ?? '?'}: ${e.message}`).join('; ');
    throw new BuildError(first.code, first.message, { location: first.location, hint: [first.hint, `${errors.length - 1} more error(s): ${more}`].filter(Boolean).join('\n') });
  }

  const staticChecks = dockerfileChecks(source.text, file, instructions, parsed.warnings, opts.buildArgs);
  const checkConfig = staticChecks.config;
  // Findings of whole-file rules now; those BuildKit makes dispatching a stage once the stages are known.
  for (const w of staticChecks.found) if (w.stage === undefined) report(w);

  const lexer = new ShellLexer(parsed.escapeToken);
  const { metaArgInstructions, stages } = splitStages(instructions, file);
  const targetIndex = selectTarget(stages, opts.target, file);
  // BuildKit's TARGETSTAGE: the target's name, `default` for an unnamed last stage.
  const metaArgs = evalMetaArgs(metaArgInstructions, opts, lexer, stages[targetIndex]!.name ?? 'default');
  checkStageCycles(stages, file);
  const sourceDateEpoch = await resolveSourceDateEpoch({
    buildArgs: opts.buildArgs, metaArgs, metaArgInstructions, stages, lexer,
    ...(opts.contextTime ? { contextTime: opts.contextTime } : {}),
    ...(opts.urlTime ? { urlTime: opts.urlTime } : {}),
  });
  // From here on the build sees the epoch's seconds wherever SOURCE_DATE_EPOCH named a source.
  const buildArgs = withResolvedEpoch(sourceDateEpoch, opts.buildArgs, metaArgs);

  const done = new Map<number, Promise<StageState>>();
  const inProgress = new Set<number>();
  const images = new Map<string, Promise<ResolvedImage>>();
  let context: Vertex | undefined;

  const located = async <T>(loc: SourceLocation, f: () => Promise<T>): Promise<T> => {
    try {
      return await f();
    } catch (e) {
      throw locate(e, loc);
    }
  };

  const copyIgnored = CopyIgnoredCheck.of(parseDockerignore(opts.dockerignore));
  const env: ConvertEnv = {
    file,
    lexer,
    platform: opts.platform,
    platformLabel: opts.labelPlatform ? `${formatPlatform(opts.platform)} ` : '',
    ...(opts.cannotRun ? { cannotRun: opts.cannotRun } : {}),
    defaultNetwork: opts.network ?? 'sandbox',
    allowNetworkHost: opts.allowNetworkHost ?? false,
    extraHosts: opts.extraHosts ?? [],
    ulimits: opts.ulimits ?? [],
    ...(opts.shmSize !== undefined ? { shmSize: opts.shmSize } : {}),
    ...(opts.limits ? { limits: opts.limits } : {}),
    buildArgs,
    metaArgs,
    warnings,
    lint(rule, message, location, comments = []) {
      if (ruleEnabled(withComments(checkConfig, comments), rule)) report({ rule, message, location });
    },
    ctx,
    ...(copyIgnored ? { copyIgnored } : {}),
    contextVertex() {
      context ??= makeVertex(
        { kind: 'context', name: 'context', dir: opts.contextDir, excludes: parseDockerignore(opts.dockerignore) },
        [],
        { name: '[internal] load build context' },
      );
      return context;
    },
    async fromSource(ref, current, loc) {
      const named = namedContext(ref, loc);
      if (named) return { vertex: (await named).vertex };
      const byIndex = /^\d+$/.test(ref) ? Number(ref) : undefined;
      const j = byIndex ?? lastStageNamed(stages, ref, stages.length);
      if (byIndex !== undefined && byIndex >= stages.length) {
        throw new BuildError('UNKNOWN_STAGE', `invalid from flag value ${ref}: stage index out of range`, { location: loc });
      }
      if (j >= 0) {
        if (j === current.index) throw new BuildError('UNKNOWN_STAGE', `circular dependency detected on stage: ${stages[j]!.name ?? j}`, { location: loc });
        if (j > current.index) {
          const here = stages[current.index]!.name ?? String(current.index);
          throw new BuildError('UNKNOWN_STAGE', `cannot copy from stage ${JSON.stringify(ref)}, it needs to be defined before current stage ${JSON.stringify(here)}`, { location: loc });
        }
        return { vertex: (await stage(j)).vertex };
      }
      return { vertex: await image(ref, opts.platform, loc) };
    },
  };

  const resolveImage = (ref: string, platform: Platform, loc: SourceLocation): Promise<ResolvedImage> => {
    const key = `${ref}|${platform.os}/${platform.architecture}/${platform.variant ?? ''}`;
    let p = images.get(key);
    if (!p) {
      p = located(loc, async () => {
        const r = await resolver.resolve(ref, platform, ctx);
        const vertex = makeVertex({ kind: 'image', ref: r.ref, digest: r.digest, platform }, [], { name: `[internal] load metadata for ${r.ref}`, location: loc });
        return { vertex, config: r.config, ref: r.ref };
      });
      images.set(key, p);
    }
    return p;
  };
  const image = async (ref: string, platform: Platform, loc: SourceLocation): Promise<Vertex | undefined> => (await resolveImage(ref, platform, loc)).vertex;

  /**
   * A named context as FROM and --from see it (BuildKit's `context:NAME`): an image resolves as
   * FROM would; a directory is a context vertex of its own, and as a stage base its files are
   * copied onto scratch, with an empty config (undefined: no named context of that name).
   */
  const namedDirs = new Map<string, ResolvedImage>();
  // An image context resolves for the platform of the FROM that names it (FROM --platform), else
  // the target's, as BuildKit's NamedContext gets the stage's platform (convert.go).
  const namedContext = (name: string, loc: SourceLocation, platform: Platform = opts.platform): Promise<ResolvedImage> | undefined => {
    const nc = opts.namedContexts?.get(name);
    if (!nc) return undefined;
    if (nc.kind === 'image') return resolveImage(nc.ref, platform, loc);
    if (nc.kind === 'scratch') return Promise.resolve({ config: emptyConfig(opts.platform), ref: 'scratch' });
    let r = namedDirs.get(name);
    if (!r) {
      const ctxVertex = makeVertex({ kind: 'context', name: `context:${name}`, dir: nc.dir, excludes: parseDockerignore(nc.dockerignore) }, [], { name: `[context ${name}] load ${nc.dir}`, location: loc });
      // As --from the directory itself is the source; as FROM it becomes a rootfs.
      r = { vertex: ctxVertex, config: emptyConfig(opts.platform), ref: `context:${name}` };
      namedDirs.set(name, r);
    }
    return Promise.resolve(r);
  };
  const namedAsBase = async (name: string, loc: SourceLocation, platform: Platform): Promise<ResolvedImage | undefined> => {
    const r = await namedContext(name, loc, platform);
    if (!r?.vertex || r.vertex.op.kind !== 'context') return r;
    const rootfs = makeVertex(
      { kind: 'file', base: 'scratch', actions: [{ type: 'copy', source: 0, srcPaths: ['.'], dest: '/', allowWildcard: false, unpackArchives: false }] },
      [r.vertex],
      { name: `[context ${name}] as a stage base`, location: loc },
    );
    return { ...r, vertex: rootfs };
  };

  const sourceFor: StageSource = {
    async stage(name, currentIndex, loc) {
      if (opts.namedContexts?.has(name)) return undefined;
      const j = lastStageNamed(stages, name, currentIndex);
      if (j < 0) return undefined;
      if (inProgress.has(j) && !done.has(j)) throw new BuildError('UNKNOWN_STAGE', `circular dependency detected on stage: ${name}`, { location: loc });
      return stage(j);
    },
    image: async (ref, platform, loc) => (await namedAsBase(ref, loc, platform)) ?? resolveImage(ref, platform, loc),
  };

  function stage(i: number): Promise<StageState> {
    let p = done.get(i);
    if (p) return p;
    if (inProgress.has(i)) throw new BuildError('UNKNOWN_STAGE', `circular dependency detected on stage: ${stages[i]!.name ?? i}`);
    inProgress.add(i);
    p = convertStage(stages[i]!, i, stages.length, env, sourceFor, located).finally(() => inProgress.delete(i));
    done.set(i, p);
    return p;
  }

  ctx.signal.throwIfAborted();
  const st = await stage(targetIndex);
  // Without a target, `--check` lints every stage, as BuildKit's lint request does.
  if (opts.allStages) for (let i = 0; i < stages.length; i++) await stage(i);
  for (const w of staticChecks.found) if (w.stage !== undefined && done.has(w.stage)) report(w);
  if (checkConfig.error && checks.length > 0) throw checksAsError(checks);
  const unused = unconsumedBuildArgs(opts.buildArgs, metaArgInstructions, [...done.keys()].map((i) => stages[i]!));
  if (unused.length > 0) warnings.push({ message: `One or more build-args [${unused.join(' ')}] were not consumed` });
  const config = structuredClone(st.config) as ImageConfig & { config: NonNullable<ImageConfig['config']> };
  if (opts.labels && Object.keys(opts.labels).length > 0) config.config.Labels = { ...(config.config.Labels ?? {}), ...opts.labels };
  return {
    target: st.vertex,
    config,
    layerSteps: st.layerSteps.map((s) => ({ historyIndex: s.historyIndex, vertex: s.vertex })),
    stageStepsFrom: st.inheritedSteps,
    stage: { name: stages[targetIndex]!.name, index: targetIndex },
    warnings,
    checks: sortByLine(checks),
    ...(sourceDateEpoch ? { sourceDateEpoch } : {}),
  };
}

/**
 * Instructions one Dockerfile may have. Real ones have tens, generated ones hundreds to a few
 * thousand; every instruction sees its stage's ARGs and ENV, rebuilt per instruction, so
 * converting n of them costs O(n²) (found by the fuzzer: 18k `ARG` lines took 11 s).
 */
export const MAX_INSTRUCTIONS = 10_000;

/**
 * Stages one Dockerfile may have. Real ones have a handful, generated monorepo ones a few
 * hundred; each stage based on the one before carries all of its history, so a long chain
 * costs quadratic time and memory to convert.
 */
export const MAX_STAGES = 4096;

/** A stage: its FROM and the instructions up to the next FROM. */
export interface StageDef {
  readonly from: Extract<Instruction, { kind: 'FROM' }>;
  readonly name?: string;
  readonly commands: readonly Instruction[];
}

function splitStages(instructions: readonly Instruction[], file: string): { metaArgInstructions: Extract<Instruction, { kind: 'ARG' }>[]; stages: StageDef[] } {
  const metaArgInstructions: Extract<Instruction, { kind: 'ARG' }>[] = [];
  const stages: { from: Extract<Instruction, { kind: 'FROM' }>; name?: string; commands: Instruction[] }[] = [];
  for (const ins of instructions) {
    if (ins.kind === 'FROM') {
      if (stages.length === MAX_STAGES) {
        throw new BuildError('DOCKERFILE_SYNTAX', `more than ${MAX_STAGES} build stages`, { location: ins.location, hint: 'split the build into several Dockerfiles' });
      }
      stages.push({ from: ins, name: ins.stageName, commands: [] });
    } else if (stages.length === 0) {
      if (ins.kind !== 'ARG') throw new BuildError('DOCKERFILE_SYNTAX', 'no build stage in current context', { location: ins.location });
      metaArgInstructions.push(ins);
    } else {
      stages[stages.length - 1]!.commands.push(ins);
    }
  }
  if (stages.length === 0) throw new BuildError('DOCKERFILE_SYNTAX', 'dockerfile contains no stages to build', { location: { file, line: 1 } });
  return { metaArgInstructions, stages };
}

/** Built-in platform ARGs, then the ARGs before the first FROM (build-args override defaults). */
function evalMetaArgs(args: readonly Extract<Instruction, { kind: 'ARG' }>[], opts: CompileOptions, lexer: ShellLexer, targetStage: string): Map<string, string | undefined> {
  const p = opts.platform;
  const b = opts.buildPlatform ?? p;
  const m = new Map<string, string | undefined>([
    ['TARGETPLATFORM', formatPlatform(p)], ['TARGETOS', p.os], ['TARGETARCH', p.architecture], ['TARGETVARIANT', p.variant ?? ''],
    ['BUILDPLATFORM', formatPlatform(b)], ['BUILDOS', b.os], ['BUILDARCH', b.architecture], ['BUILDVARIANT', b.variant ?? ''],
    ['TARGETSTAGE', targetStage],
  ]);
  for (const k of m.keys()) if (Object.prototype.hasOwnProperty.call(opts.buildArgs, k)) m.set(k, opts.buildArgs[k]);
  for (const ins of args) {
    for (const a of ins.args) {
      let v: string | undefined;
      try {
        if (Object.prototype.hasOwnProperty.call(opts.buildArgs, a.key)) v = opts.buildArgs[a.key];
        else if (a.value !== undefined) v = lexer.processWord(a.value, metaEnv(m));
        else v = m.get(a.key);
      } catch (e) {
        throw locate(e, ins.location);
      }
      m.set(a.key, v);
    }
  }
  return m;
}

export function metaEnv(m: ReadonlyMap<string, string | undefined>): { get(k: string): string | undefined } {
  return { get: (k) => m.get(k) };
}

/** Built-in args BuildKit never reports as unused: the proxies, the platform/stage args, and SOURCE_DATE_EPOCH (the build itself reads it). */
const BUILTIN_ARGS = new Set([
  'SOURCE_DATE_EPOCH',
  ...['HTTP_PROXY', 'HTTPS_PROXY', 'FTP_PROXY', 'NO_PROXY', 'ALL_PROXY'].flatMap((k) => [k, k.toLowerCase()]),
  ...PLATFORM_ARGS,
  'TARGETSTAGE',
  CHECK_BUILD_ARG,
  SANDBOX_HOSTNAME_ARG,
]);

/**
 * `--build-arg`s no ARG of the built stages (or before the first FROM) declares, sorted, for
 * BuildKit's "were not consumed" warning. Stages the target does not need do not count.
 */
function unconsumedBuildArgs(buildArgs: Readonly<Record<string, string>>, meta: readonly Extract<Instruction, { kind: 'ARG' }>[], built: readonly StageDef[]): string[] {
  const declared = new Set<string>();
  for (const ins of [...meta, ...built.flatMap((s) => s.commands)]) if (ins.kind === 'ARG') for (const a of ins.args) declared.add(a.key);
  return Object.keys(buildArgs).filter((k) => !declared.has(k) && !BUILTIN_ARGS.has(k)).sort();
}

/**
 * BuildKit checks the stage graph for cycles before it looks at order, so a loop through later
 * stages is reported as a cycle (on the stage where it closes), not as a forward `--from`.
 * Edges are the literal `COPY/ADD --from` and `FROM` names of other stages (variables in those
 * are refused or resolved later).
 */
function checkStageCycles(stages: readonly StageDef[], file: string): void {
  const byName = new Map<string, number>();
  stages.forEach((s, i) => s.name && byName.set(s.name, i));
  const ref = (name: string | undefined): number | undefined => {
    if (name === undefined) return undefined;
    return /^\d+$/.test(name) ? (Number(name) < stages.length ? Number(name) : undefined) : byName.get(name.toLowerCase());
  };
  const deps = stages.map((s, i) => {
    const out: { to: number; location: SourceLocation }[] = [];
    const f = lastStageNamed(stages, s.from.image, i);
    if (f >= 0) out.push({ to: f, location: s.from.location });
    for (const c of s.commands) {
      if ((c.kind === 'COPY' || c.kind === 'ADD') && c.from !== undefined) {
        const to = ref(c.from);
        if (to !== undefined) out.push({ to, location: c.location });
      }
    }
    return out;
  });
  const state = new Array<0 | 1 | 2>(stages.length).fill(0); // unvisited, on the path, done
  const visit = (i: number): void => {
    state[i] = 1;
    for (const d of deps[i]!) {
      if (state[d.to] === 1) {
        throw new BuildError('UNKNOWN_STAGE', `circular dependency detected on stage: ${stages[d.to]!.name ?? d.to}`, { location: d.location ?? { file, line: 1 } });
      }
      if (state[d.to] === 0) visit(d.to);
    }
    state[i] = 2;
  };
  for (let i = 0; i < stages.length; i++) if (state[i] === 0) visit(i);
}

/** The config of a base without an image: the platform, no layers. */
function emptyConfig(platform: Platform): ImageConfig {
  return { architecture: platform.architecture, os: platform.os, rootfs: { type: 'layers', diff_ids: [] } } as ImageConfig;
}

/**
 * The index of the last stage before `before` named `name` (-1: none). A repeated name is only
 * a DuplicateStageName warning in BuildKit: FROM sees the latest stage of that name defined
 * above it, `--from` and `--target` the last one.
 */
function lastStageNamed(stages: readonly StageDef[], name: string, before: number): number {
  const n = name.toLowerCase();
  for (let i = Math.min(before, stages.length) - 1; i >= 0; i--) if (stages[i]!.name === n) return i;
  return -1;
}

function selectTarget(stages: readonly StageDef[], target: string | undefined, file: string): number {
  if (target === undefined || target === '') return stages.length - 1;
  const t = target.toLowerCase();
  const i = lastStageNamed(stages, t, stages.length);
  if (i >= 0) return i;
  const names = stages.map((s) => s.name).filter((n): n is string => n !== undefined);
  const best = names.map((n) => ({ n, d: editDistance(t, n) })).sort((a, b) => a.d - b.d)[0];
  const hint = best && best.d <= Math.max(2, Math.floor(t.length / 3)) ? ` (did you mean ${best.n}?)` : '';
  throw new BuildError('UNKNOWN_STAGE', `target stage ${JSON.stringify(target)} could not be found${hint}`, { location: { file, line: 1 } });
}

/** Accepts only the standard frontend in `# syntax=`; there is no support for frontend images. */
/**
 * The directives BuildKit acts on before parsing. `# syntax=` names a frontend image: tsbuild has
 * the Dockerfile frontend built in, so the Dockerfile ones are accepted with a one-line note and
 * any other is an error (BuildKit would fail to run it too). `# check=` configures build checks:
 * `skip=<rules|all>` and `error=true|false`, separated by `;`.
 */
function checkDirectives(text: string, file: string, errors: BuildError[], warnings: Warning[]): void {
  const lines = text.replace(/^\uFEFF/, '').split('\n');
  for (let i = 0; i < lines.length; i++) {
    // `(.*?)\s*$` would be quadratic on a value with a long inner run of blanks: trim instead.
    const head = /^\s*#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=/.exec(lines[i]!);
    const rest = head ? lines[i]!.slice(head[0].length).trim() : '';
    if (!head || /[\n\r\u2028\u2029]/.test(rest)) break;
    const m = [head[0], head[1], rest] as const;
    const location = { file, line: i + 1, column: 1 };
    const name = m[1]!.toLowerCase();
    const value = m[2]!;
    if (name === 'syntax') {
      if (/^(docker\.io\/)?docker\/dockerfile(-upstream)?(:[\w.-]+)?(@sha256:[a-f0-9]{64})?$/.test(value)) {
        warnings.push({ message: `# syntax=${value}: using tsbuild's built-in Dockerfile frontend; no frontend image is loaded`, location });
      } else {
        errors.push(new BuildError('DOCKERFILE_SYNTAX', `unsupported frontend ${JSON.stringify(value)}: tsbuild only has the built-in Dockerfile frontend`, { location }));
      }
    } else if (name === 'check') {
      const bad = checkDirectiveProblem(value);
      if (bad) errors.push(new BuildError('DOCKERFILE_SYNTAX', `invalid check directive ${JSON.stringify(value)}: ${bad}`, { location, hint: 'use e.g. # check=skip=JSONArgsRecommended;experimental=all;error=true' }));
    }
  }
}

function checkDirectiveProblem(value: string): string | undefined {
  try {
    parseCheckOptions(value);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

/** Pins an error to an instruction: BuildErrors keep their code, lexer errors become INVALID_INSTRUCTION. */
export function locate(e: unknown, loc: SourceLocation): unknown {
  if (isAbortError(e)) return e;
  if (e instanceof BuildError) return e.withLocation(loc);
  if (e instanceof ShellLexError) return new BuildError('INVALID_INSTRUCTION', e.message, { location: loc, cause: e });
  if (e instanceof Error) return new BuildError('INTERNAL', e.message, { location: loc, cause: e });
  return e;
}

import type { SourceLocation } from '../errors.js';
import type { ContainerConfig, ImageConfig, Platform } from '../oci/image.js';
import type { RunLimits, Ulimit, Vertex } from '../solver/graph.js';
import type { Ctx } from '../ctx.js';
import type { EnvGetter, ShellLexer } from './shell-lexer.js';
import type { CopyIgnoredCheck } from './copy-ignored.js';
import type { Digest } from '../oci/digest.js';

/**
 * The mutable state of one stage while its instructions are converted (BuildKit dispatchState),
 * and the compile-wide context the converters share. Internal to src/frontend.
 */

export const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** The shell of shell-form commands without SHELL: BuildKit's per-OS default. */
export function defaultShell(os: string | undefined): readonly string[] {
  return os === 'windows' ? ['cmd', '/S', '/C'] : ['/bin/sh', '-c'];
}

/** The PATH set when the image has none: Linux only (BuildKit's system.DefaultPathEnv). */
export function defaultPath(os: string | undefined): string | undefined {
  return os === 'windows' ? undefined : DEFAULT_PATH;
}
export const HISTORY_COMMENT = 'buildkit.dockerfile.v0';

/** The platform ARGs BuildKit sets itself (TARGETPLATFORM, BUILDOS, …): usable without --build-arg. */
export const PLATFORM_ARGS: readonly string[] = ['PLATFORM', 'OS', 'ARCH', 'VARIANT'].flatMap((k) => [`TARGET${k}`, `BUILD${k}`]);

export interface ArgEntry {
  readonly key: string;
  readonly value: string | undefined;
}

export interface StageState {
  readonly index: number;
  readonly name?: string;
  /** Prefix for vertex names: `stage-name ` or ''. */
  readonly label: string;
  /** What this stage's RUN steps execute as: FROM --platform, the stage it builds on, or the target. */
  readonly platform: Platform;
  /** Current root filesystem; undefined = empty (scratch). */
  vertex?: Vertex;
  readonly config: ImageConfig & { config: ContainerConfig };
  /** ARGs declared in this stage, in declaration order (repeats kept, as BuildKit's history shows). */
  readonly args: ArgEntry[];
  /**
   * ARG values assigned after the last ENV of their key. BuildKit (dispatchArg, convert.go since
   * 47a52a17b) adds a valued ARG to the build state's env, so from its line on it wins over an
   * earlier ENV of the same key in RUN's environment and in expansion; a later ENV wins back.
   * The image config's Env is untouched.
   */
  readonly argOverEnv: Map<string, string>;
  cmdSet: boolean;
  cmdIndex: number;
  readonly cmdTotal: number;
  /** True while the base's ONBUILD triggers run: their step names say `ONBUILD`. */
  inTrigger: boolean;
  readonly layerSteps: { historyIndex: number; vertex: Vertex }[];
  /** How many of `layerSteps` came from the stage this one is built FROM (`--squash` keeps their layers). */
  readonly inheritedSteps: number;
  /** `args` and `config.Env` as lookups, updated as they change (see StageVars). */
  readonly vars: StageVars;
}

/** Resolves a base image (BuildKit ImageMetaResolver); the frontend's only I/O seam. */
export interface ImageResolver {
  resolve(ref: string, platform: Platform, ctx: Ctx): Promise<{ ref: string; digest: Digest; config: ImageConfig }>;
}

export interface Warning {
  message: string;
  location?: SourceLocation;
  /** The build-check rule of a check finding (its description and URL are in CHECK_RULES). */
  rule?: string;
}

/** What converters need besides the stage: expansion, the shared context vertex, other stages. */
export interface ConvertEnv {
  readonly file: string;
  readonly lexer: ShellLexer;
  /** The target platform. */
  readonly platform: Platform;
  /** Prefix of step names when several platforms are built at once (`linux/arm64 `), else ''. */
  readonly platformLabel: string;
  /** `--network` of the build: what RUN without --network (or with `default`) gets. */
  readonly defaultNetwork: 'sandbox' | 'host' | 'none';
  /** `--allow network.host`: RUN may use the host's network. */
  readonly allowNetworkHost: boolean;
  /** `--ulimit` and `--shm-size` of the build, for every RUN. */
  readonly ulimits: readonly Ulimit[];
  readonly shmSize?: number;
  /** `--memory`, `--cpus`, `--pids-limit`… of the build, for every RUN. */
  readonly limits?: RunLimits;
  /** `--add-host` entries every RUN's /etc/hosts gets. */
  readonly extraHosts: readonly { readonly host: string; readonly ip: string }[];
  /** Why RUN can't execute for `p` on this machine (undefined when it can); absent: no check. */
  readonly cannotRun?: (p: Platform) => string | undefined;
  readonly buildArgs: Readonly<Record<string, string>>;
  /** Global (meta) ARG values, built-ins included. */
  readonly metaArgs: ReadonlyMap<string, string | undefined>;
  readonly warnings: Warning[];
  /** Reports a build-check finding found while converting (kept or dropped by `# check=`). */
  /** `comments`: those right above the instruction, whose `# check=` applies to it alone. */
  lint(rule: string, message: string, location: SourceLocation, comments?: readonly string[]): void;
  readonly ctx: Ctx;
  /** Judges COPY/ADD sources from the context against .dockerignore (undefined: nothing to judge). */
  readonly copyIgnored?: CopyIgnoredCheck;
  /** The one shared build-context vertex. */
  contextVertex(): Vertex;
  /** `--from=<name|index|image>` → a vertex (stage result or image); undefined = empty stage. */
  fromSource(ref: string, current: StageState, loc: SourceLocation): Promise<{ vertex?: Vertex }>;
}

/**
 * A stage's variables, kept up to date incrementally: rebuilding them from every ARG and ENV
 * entry for each instruction made a Dockerfile of n ARG/ENV lines cost O(n²) Map inserts (the
 * fuzzer's 10k-line cases took a minute). ARGs are only ever appended to `st.args`, and ENV
 * replaces `config.Env` by a copy with one entry replaced or appended, so the next call only
 * applies what changed.
 */
export interface StageVars {
  argCount: number;
  /** ARG values in declaration order, the last declaration of a key winning. */
  readonly args: Map<string, string | undefined>;
  env: readonly string[];
  readonly envMap: Map<string, string>;
}

/** Empty StageVars for a new StageState; filled on first use. */
export function newStageVars(): StageVars {
  return { argCount: 0, args: new Map(), env: [], envMap: new Map() };
}

function varsOf(st: StageState): StageVars {
  const v = st.vars;
  for (; v.argCount < st.args.length; v.argCount++) v.args.set(st.args[v.argCount]!.key, st.args[v.argCount]!.value);
  const env = st.config.config.Env ?? [];
  if (env !== v.env) {
    const old = v.env;
    // Replaced or appended entries keep their key in place; anything else is rebuilt whole.
    const incremental = env.length >= old.length && old.every((e, i) => e === env[i] || envKey(e) === envKey(env[i]!));
    if (!incremental) v.envMap.clear();
    for (let i = 0; i < env.length; i++) if (!incremental || env[i] !== old[i]) setEnvEntry(v.envMap, env[i]!);
    v.env = env;
  }
  return v;
}

const envKey = (e: string): string => (e.includes('=') ? e.slice(0, e.indexOf('=')) : e);

function setEnvEntry(m: Map<string, string>, e: string): void {
  const i = e.indexOf('=');
  if (i < 0) m.set(e, '');
  else m.set(e.slice(0, i), e.slice(i + 1));
}

/** The stage's ARG values (the last declaration of a key wins), in declaration order. Read-only. */
export function argValues(st: StageState): ReadonlyMap<string, string | undefined> {
  return varsOf(st).args;
}

/** The environment used to expand words: the last assignment of a key wins, ENV or valued ARG. */
export function expansionEnv(st: StageState): EnvGetter {
  const v = varsOf(st);
  const over = st.argOverEnv;
  return { get: (k) => (over.has(k) ? over.get(k) : v.envMap.has(k) ? v.envMap.get(k) : (v.args.get(k) ?? undefined)) };
}

/** Sets `key=value` in an Env list: replaces the first entry for the key, else appends. */
export function addEnv(env: readonly string[], key: string, value: string): string[] {
  const out = [...env];
  const i = out.findIndex((e) => e === key || e.startsWith(key + '='));
  if (i >= 0) out[i] = `${key}=${value}`;
  else out.push(`${key}=${value}`);
  return out;
}

/** `k=v` → {k, v}; `k=` and a bare `k` give an empty value (BuildKit parseKeyValue). */
export function parseKeyValue(entry: string): { key: string; value: string } {
  const i = entry.indexOf('=');
  return i < 0 ? { key: entry, value: '' } : { key: entry.slice(0, i), value: entry.slice(i + 1) };
}

/** Appends a history entry; `withLayer` steps get a layerStep when `vertex` is given. */
export function commitHistory(st: StageState, createdBy: string, withLayer: boolean, vertex?: Vertex, buildkitSuffix = false): void {
  const history = (st.config.history ??= []);
  history.push({
    created_by: buildkitSuffix ? `${createdBy} # buildkit` : createdBy,
    comment: HISTORY_COMMENT,
    ...(withLayer ? {} : { empty_layer: true }),
  });
  if (withLayer && vertex) st.layerSteps.push({ historyIndex: history.length - 1, vertex });
}

/**
 * BuildKit's progress name of a step that makes a vertex (RUN, COPY, ADD, a WORKDIR other than
 * `/`, FROM an image): `[name 2/5] RUN make`, `[name 1/3] ONBUILD RUN …` for a trigger. Other
 * instructions take no number (BuildKit prefixCommand, dockerfile2llb/convert.go).
 */
export function stepName(st: StageState, text: string): string {
  if (st.cmdTotal === 0) return text;
  st.cmdIndex++;
  const width = String(st.cmdTotal).length;
  return `[${st.label}${String(st.cmdIndex).padStart(width, ' ')}/${st.cmdTotal}] ${st.inTrigger ? 'ONBUILD ' : ''}${text}`;
}

/**
 * A stage's step count as BuildKit makes it: 1 for FROM an image (not scratch, not another
 * stage), one per RUN/COPY/ADD/WORKDIR, one per ONBUILD trigger of the base, whatever its kind.
 */
export function countSteps(fromImage: boolean, commands: readonly { kind: string }[], triggers: number): number {
  const steps = commands.filter((c) => c.kind === 'RUN' || c.kind === 'COPY' || c.kind === 'ADD' || c.kind === 'WORKDIR').length;
  return (fromImage ? 1 : 0) + steps + triggers;
}

/** Go's `%q` of a []string: `["a" "b"]`. */
export function goQuoteList(list: readonly string[]): string {
  return `[${list.map((s) => JSON.stringify(s)).join(' ')}]`;
}

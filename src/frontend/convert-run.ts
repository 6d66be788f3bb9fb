import { BuildError } from '../errors.js';
import { formatPlatform } from '../oci/platform.js';
import { makeVertex, type RunMount, type Vertex } from '../solver/graph.js';
import { checkMountFrom, MountSyntaxError, parseMount } from './run-mount.js';
import type { Instruction } from './instructions.js';
import { chompHeredocContent, parseHeredocToken } from './heredoc.js';
import { ShellLexer, ShellLexError } from './shell-lexer.js';
import { commandArgs, runEnvOf } from './convert-meta.js';
import { commitHistory, defaultPath, expansionEnv, stepName, type ConvertEnv, type StageState } from './stage-state.js';

/**
 * Proxy build-args: exported to RUN when given, without an ARG and without a history record.
 * As BuildKit's llb.ProxyEnv, either spelling sets the proxy (upper case wins) and the RUN sees
 * it under both names.
 */
const PROXY_ARGS = ['HTTP_PROXY', 'HTTPS_PROXY', 'FTP_PROXY', 'NO_PROXY', 'ALL_PROXY'];

/**
 * RUN → ExecOp on the current rootfs. `--network=default` (or none given) is the build's
 * `--network`, itself `sandbox` by default: as BuildKit's, a private network namespace (user-mode
 * networking, no bridge). The host's network is the `network.host` entitlement, as in BuildKit:
 * refused here, at the RUN's line, unless the build allows it.
 */
export async function convertRun(ins: Extract<Instruction, { kind: 'RUN' }>, st: StageState, env: ConvertEnv): Promise<void> {
  const unable = env.cannotRun?.(st.platform);
  if (unable) {
    throw new BuildError('PLATFORM', `RUN for ${formatPlatform(st.platform)} can't execute here: ${unable}`, {
      hint: 'run build steps on the build platform (FROM --platform=$BUILDPLATFORM ...) and only COPY their output into the target stage',
    });
  }
  const rootfs = st.vertex ? [st.vertex] : [];
  const { mounts, inputs } = await runMounts(ins, st, env, rootfs);
  const args = commandArgs(ins.files.length > 0 ? heredocCommand(ins) : ins.cmd, st);
  const runEnv = runEnvOf(st);
  const path = defaultPath(st.config.os);
  if (path && !runEnv.some((e) => e.startsWith('PATH='))) runEnv.unshift(path);
  const declared = new Set(st.args.map((a) => a.key));
  const proxyEnv: string[] = [];
  for (const upper of PROXY_ARGS) {
    const v = env.buildArgs[upper] ?? env.buildArgs[upper.toLowerCase()];
    if (v === undefined) continue;
    for (const k of [upper, upper.toLowerCase()]) {
      if (!declared.has(k) && !runEnv.some((e) => e.startsWith(`${k}=`))) proxyEnv.push(`${k}=${v}`);
    }
  }
  const network = ins.network === 'none' || ins.network === 'host' ? ins.network : env.defaultNetwork;
  if (network === 'host' && !env.allowNetworkHost) {
    const how = ins.network === 'host' ? 'RUN --network=host' : 'RUN with the build\'s --network host';
    throw new BuildError('INVALID_INSTRUCTION', `${how}: entitlement network.host is not allowed`, {
      location: ins.location,
      hint: 'pass --allow network.host (or set allow = ["network.host"] under [build] in tsbuild.toml) to let RUN use the host\'s network',
    });
  }
  const name = stepName(st, displayCommand(ins, st, env, mounts));
  const hostname = env.buildArgs[SANDBOX_HOSTNAME_ARG];
  const vertex = makeVertex(
    {
      kind: 'exec',
      args,
      env: runEnv,
      cwd: st.config.config.WorkingDir || '/',
      user: st.config.config.User ?? '',
      network,
      ...(env.extraHosts.length > 0 ? { extraHosts: env.extraHosts } : {}),
      ...(env.ulimits.length > 0 ? { ulimits: env.ulimits } : {}),
      ...(env.shmSize !== undefined ? { shmSize: env.shmSize } : {}),
      ...(env.limits ? { limits: env.limits } : {}),
      ...(mounts.length > 0 ? { mounts } : {}),
      ...(ins.security === 'insecure' ? { security: 'insecure' as const } : {}),
      ...(hostname ? { hostname } : {}),
    },
    inputs,
    { name, location: ins.location, ...(proxyEnv.length > 0 ? { proxyEnv } : {}), ...(st.config.config.Shell ? { shell: [...st.config.config.Shell] } : {}) },
  );
  st.vertex = vertex;
  commitHistory(st, `RUN ${runCommandString(args, st)}`, true, vertex, true);
}

/** BuildKit's built-in build arg for the RUN containers' hostname (frontend/dockerui/config.go). */
export const SANDBOX_HOSTNAME_ARG = 'BUILDKIT_SANDBOX_HOSTNAME';

/**
 * The step's name as BuildKit shows it (dispatchRun's processCmdEnv): the instruction with ENV and
 * ARG values expanded, quotes kept, unset variables left as written, and the variable of every
 * `--mount=type=secret,env=NAME` shown as `****` (withSecretEnvMask), so the progress never shows
 * a value that stands in for a secret. A text the lexer refuses is shown as written.
 */
function displayCommand(ins: Extract<Instruction, { kind: 'RUN' }>, st: StageState, env: ConvertEnv, mounts: readonly RunMount[]): string {
  const masked = new Set(mounts.flatMap((m) => (m.type === 'secret' && m.env !== undefined ? [m.env] : [])));
  const vars = expansionEnv(st);
  const lexer = new ShellLexer(env.lexer.escapeToken, { rawQuotes: true, skipUnsetEnv: true }, env.lexer.budget);
  try {
    return lexer.processWord(ins.original, { get: (k) => (masked.has(k) ? '****' : vars.get(k)) });
  } catch (e) {
    if (e instanceof ShellLexError) return ins.original;
    throw e;
  }
}

/**
 * `--mount` values → RunMounts (expanded with ARG/ENV like BuildKit does), with every `from`
 * (stage, image, named context; none = the build context) added after the rootfs as an input.
 */
async function runMounts(
  ins: Extract<Instruction, { kind: 'RUN' }>,
  st: StageState,
  env: ConvertEnv,
  rootfs: readonly Vertex[],
): Promise<{ mounts: RunMount[]; inputs: Vertex[] }> {
  const inputs = [...rootfs];
  // Index 0 is the rootfs even for a scratch stage, so mount inputs never collide with it.
  if (inputs.length === 0 && ins.mounts.length > 0) inputs.push(makeVertex({ kind: 'file', base: 'scratch', actions: [] }, [], { name: '[internal] scratch', location: ins.location }));
  const mounts: RunMount[] = [];
  const vars = expansionEnv(st);
  for (const raw of ins.mounts) {
    let spec;
    try {
      checkMountFrom(raw);
      spec = parseMount(raw, st.config.config.WorkingDir || '/', (v) => env.lexer.processWord(v, vars));
    } catch (e) {
      if (e instanceof MountSyntaxError) throw new BuildError('INVALID_INSTRUCTION', `invalid --mount=${raw}: ${e.message}`, { location: ins.location, hint: 'see https://docs.docker.com/reference/dockerfile/#run---mount' });
      throw e;
    }
    if (spec.type !== 'bind' && spec.type !== 'cache') {
      mounts.push(spec);
      continue;
    }
    const { from, ...rest } = spec;
    if (spec.type === 'cache' && from === undefined) {
      mounts.push(rest as RunMount);
      continue;
    }
    let source: Vertex;
    if (from === undefined) source = env.contextVertex();
    else {
      const src = await env.fromSource(from, st, ins.location);
      source = src.vertex ?? makeVertex({ kind: 'file', base: 'scratch', actions: [] }, [], { name: `[internal] empty stage ${from}`, location: ins.location });
    }
    let input = inputs.findIndex((v) => v.digest === source.digest);
    if (input < 1) {
      inputs.push(source);
      input = inputs.length - 1;
    }
    mounts.push({ ...rest, input } as RunMount);
  }
  return { mounts, inputs };
}

/**
 * RUN with heredocs (BuildKit dispatchRun): a command that is a single heredoc runs its body with
 * the shell, or, when the body starts with `#!`, as an executable script at /dev/pipes/<name>
 * (written into the sandbox's /dev tmpfs, so it never lands in a layer); any other form is
 * handed to the shell with the bodies re-attached, and the shell does the heredoc itself.
 */
export function heredocCommand(ins: Extract<Instruction, { kind: 'RUN' }>): { prependShell: boolean; args: readonly string[] } {
  const line = ins.cmd.args[0] ?? '';
  let single: ReturnType<typeof parseHeredocToken>;
  try {
    single = parseHeredocToken(line);
  } catch {
    single = undefined;
  }
  if (single) {
    const file = ins.files[0]!;
    const data = file.chomp ? chompHeredocContent(file.data) : file.data;
    if (!data.startsWith('#!')) return { prependShell: true, args: [data] };
    const path = `/dev/pipes/${file.name}`;
    let delim = 'TSBUILD_SCRIPT_EOF';
    while (data.split('\n').includes(delim)) delim += '_';
    const body = data.endsWith('\n') ? data : `${data}\n`;
    const script = `mkdir -p /dev/pipes && cat > '${path}' <<'${delim}'\n${body}${delim}\nchmod 0755 '${path}' && exec '${path}'`;
    return { prependShell: true, args: [script] };
  }
  let full = line;
  for (const f of ins.files) full += `\n${f.data}${f.name}`;
  return { prependShell: true, args: [full] };
}

/** BuildKit's history text for RUN: `|N k=v ... ` (ARGs in scope, latest values) before argv. */
function runCommandString(args: readonly string[], st: StageState): string {
  const env = expansionEnv(st);
  const entries: string[] = [];
  const index = new Map<string, number>();
  for (const a of st.args) {
    const v = env.get(a.key) ?? a.value ?? '';
    const i = index.get(a.key);
    if (i !== undefined) entries[i] = `${a.key}=${v}`;
    else {
      index.set(a.key, entries.length);
      entries.push(`${a.key}=${v}`);
    }
  }
  const prefix = entries.length > 0 ? [`|${entries.length}`, ...entries] : [];
  return [...prefix, ...args].join(' ');
}

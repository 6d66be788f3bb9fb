import { isolationSetting } from './isolation-setting.js';
import { fetchedContextTime, withSourceDateEpoch } from './source-date-epoch.js';
import { writeFile } from 'node:fs/promises';
import { relative } from 'node:path';
import type { CheckWarning } from '../frontend/build-checks.js';
import { isIP } from 'node:net';
import { applyGcPolicy } from '../orchestrator/gc.js';
import { buildTargets, checkBuild, runBuild, type BuildRequest } from '../orchestrator/run-build.js';
import { formatTargets } from '../frontend/targets.js';
import { provenanceOption } from './provenance-option.js';
import { nullSink } from '../events.js';
import type { SquashMode } from '../orchestrator/squash-layers.js';
import { BuildError } from '../errors.js';
import { checkAttestationOutputs, parseOutputSpec, STDOUT, type ExportTarget } from '../exporter/export-target.js';
import type { BuildMetadata } from '../../schemas/types/metadata-file.js';
import { expansionLimits, gcPolicy, networkPolicy, registrySettings } from './config-file.js';
import type { GlobalOptions } from './globals.js';
import { formatBytes, parseByteSize } from '../byte-size.js';
import { parseReference } from '../oci/reference.js';
import { RegistryClient } from '../remote/registry-client.js';
import { registryOptions } from './registry-options.js';
import { buildProgress, type BuildProgress } from './build-progress.js';
import { parseOnError } from './on-error-flag.js';
import { onRunErrorShell, type TerminalHandoff } from '../solver/ops/failure-shell.js';
import { isatty } from 'node:tty';
import { maskSecrets } from './secret-mask.js';
import { readBuildArgFile, readStdinInputs } from './stdin-input.js';
import { readRemoteContext, remoteContextKind } from './remote-context.js';
import { stateRoot } from './state-root.js';
import { parseCacheFrom, parseCacheTo } from '../orchestrator/cache-transfer/cache-spec.js';
import { formatPlatform, parsePlatform } from '../oci/platform.js';
import type { Platform } from '../oci/image.js';
import type { Ulimit } from '../solver/graph.js';
import { parseAllow, parseSecrets, parseSsh, secretValues } from './run-secrets.js';
import { parseRunLimits } from './run-limit-flags.js';
import { checkOutputDest } from './output-dest.js';
import { checkContextDir } from './context-dir.js';
import type { CacheExportSpec } from '../orchestrator/cache-transfer/cache-spec.js';
import type { BuildFlags } from './build-command.js';

/** `tsbuild build`: what runs once the flags are parsed (build-command.ts defines them). */
export async function buildAction(context: string, flags: BuildFlags, globals: GlobalOptions, signal: AbortSignal, setExit: (code: number) => void): Promise<void> {
  const call = parseCall(flags.call);
  if (call.request === 'check') flags.check = true;
  // isatty, not process.stdin: that would open a tty stream on the fd runc is about to share.
  const onError = parseOnError(flags.onError, { stdin: isatty(0), stdout: isatty(1) });
  const outputs = flags.output.map(parseOutputSpec);
  const toStdout = outputs.filter((o) => 'dest' in o && o.dest === STDOUT);
  if (toStdout.length > 1) throw new BuildError('USAGE', '--output: only one output can go to standard output (dest=-)');
  if (toStdout.length && flags.quiet) throw new BuildError('USAGE', '-q prints the image ID to standard output, where --output dest=- writes the archive; use --iidfile');
  const limits = parseRunLimits(flags);
  const cacheTo = flags.cacheTo.map(parseCacheTo);
  const cacheFrom = flags.cacheFrom.map(parseCacheFrom);
  if (flags.push) outputs.push(...pushTargets(flags.tag));
  const provenance = provenanceOption(flags.provenance, flags.attest);
  if (provenance.provenance) checkAttestationOutputs(outputs);
  if (!flags.check) await checkBuildDests(outputs, cacheTo, flags);
  const settings = globals.settings?.config ?? {};
  // Entitlements from the flags and from tsbuild.toml ([build] allow), as buildkitd's insecure-entitlements.
  const { allowInsecure, allowNetworkHost, allowDebugSecrets } = parseAllow([...flags.allow, ...(settings.build?.allow ?? [])]);
  if (flags.network === 'host' && !allowNetworkHost) {
    throw new BuildError('USAGE', '--network host: entitlement network.host is not allowed', { hint: 'add --allow network.host (or allow = ["network.host"] under [build] in tsbuild.toml)' });
  }
  const network = networkPolicy(settings);
  const registry = new RegistryClient(registryOptions(process.env, { ...registrySettings(settings), ...network }));
  const buildArgs: Record<string, string> = {};
  for (const f of flags.buildArgFile) Object.assign(buildArgs, await readBuildArgFile(f, process.env));
  Object.assign(buildArgs, parseBuildArgs(flags.buildArg, process.env));
  Object.assign(buildArgs, withSourceDateEpoch(buildArgs, flags.sourceDateEpoch, process.env));
  // `-` (standard input) or a git / http(s) URL: the context is put on disk for the build.
  const stdinInputs = (await readStdinInputs(context, flags.file, process.stdin, signal)) ?? (await readRemoteContext(context, flags.file, signal, network.timeouts));
  const buildContexts = parseBuildContexts(flags.buildContext);
  if (!stdinInputs) await checkContextDir(context, 'build context');
  for (const [name, value] of Object.entries(buildContexts)) if (!/^[a-z-]+:\/\//.test(value)) await checkContextDir(value, `--build-context ${name}`);
  const progress = buildProgress({ ...flags, configDefault: settings.progress }, process.stderr, process.env);
  const secrets = parseSecrets(flags.secret, process.env);
  const { mode } = progress;
  const events = maskSecrets(progress.events, await secretValues(secrets));
  const request: BuildRequest =
    {
      registry,
      httpTimeouts: network.timeouts,
      pull: !!flags.pull,
      root: stateRoot(globals.root, process.env),
      isolation: isolationSetting(globals, process.env),
      contextDir: stdinInputs?.contextDir ?? context,
      dockerfile: stdinInputs ? stdinInputs.dockerfile : flags.file,
      tags: flags.tag,
      describeDistributed: flags.metadataFile !== undefined,
      buildArgs,
      target: flags.target,
      platforms: flags.platform === undefined ? undefined : parsePlatforms(flags.platform),
      ...(flags.network === 'none' || flags.network === 'host' ? { network: flags.network } : {}),
      allowNetworkHost,
      extraHosts: flags.addHost.map(parseAddHost),
      ulimits: flags.ulimit.map(parseUlimit),
      ...(flags.shmSize !== undefined ? { shmSize: parseShmSize(flags.shmSize) } : {}),
      ...(limits ? { limits } : {}),
      ...provenance,
      labels: parseKeyValues('--label', flags.label),
      annotations: parseAnnotations(flags.annotation),
      outputs,
      // A context put on disk by tsbuild has its own source time; a directory's is asked of git.
      ...(stdinInputs && (context === '-' || remoteContextKind(context)) ? { contextTime: fetchedContextTime(context, stdinInputs.sourceTime, flags.sourceDateEpoch !== undefined) } : {}),
      // Provenance names a remote context (and a git one's commit) instead of local sources.
      ...(stdinInputs && remoteContextKind(context) ? { remoteContext: { uri: context, ...(stdinInputs.gitSource ? { git: stdinInputs.gitSource } : {}) } } : {}),
      // BuildKit has no time for a local directory; tsbuild asks git, and only the flag insists.
      ...(flags.sourceDateEpoch !== undefined ? { contextTimeRequired: true } : {}),
      noCache: !flags.cache,
      ...squashOption(flags),
      noCacheFilter: flags.cacheFilter.flatMap((f) => f.split(',')).map((f) => f.trim()).filter(Boolean),
      explain: !!flags.explain || mode === 'rawjson',
      maxParallelism: flags.maxParallelism ?? settings['max-parallelism'],
      expansionLimits: expansionLimits(settings),
      cacheTo,
      cacheFrom,
      buildContexts,
      exec: {
        secrets,
        ssh: parseSsh(flags.ssh, process.env),
        allowInsecure,
        ...(onError.action === 'shell' && !flags.check && call.request === 'build' ? { onError: onRunErrorShell({ ...(onError.command !== undefined ? { command: onError.command } : {}), withSecrets: allowDebugSecrets, terminal: terminalHandoff(progress) }) } : {}),
      },
    };
  if (call.request === 'targets') {
    try {
      const list = await buildTargets(request);
      process.stdout.write(call.json ? `${JSON.stringify(list, null, 2)}\n` : formatTargets(list));
    } finally {
      await stdinInputs?.dispose();
      progress.close();
      await registry.close();
    }
    return setExit(0);
  }
  if (flags.check) {
    // Nothing is built: the Dockerfile is converted (base images resolved) and checked.
    try {
      setExit(printChecks(await checkBuild(request, { signal, events: nullSink })));
    } finally {
      await stdinInputs?.dispose();
      progress.close();
      await registry.close();
    }
    return;
  }
  const result = await runBuild(
    request,
    { signal, events },
  )
    .then(
      async (r) => (await stdinInputs?.dispose(), r),
      (e: unknown) => {
        stdinInputs?.disposeAtExit();
        throw e;
      },
    )
    .finally(() => {
      progress.close();
      return registry.close();
    });
  for (const [i, o] of outputs.entries()) if (o.type === 'registry') process.stderr.write(`pushed ${parseReference(o.name).toString()}@${result.exported[i]!.digest}\n`);
  // As buildx: the image ID is the config digest, or the index digest for several platforms.
  const imageId = result.config?.digest ?? result.manifest.digest;
  if (flags.iidfile) await writeFile(flags.iidfile, imageId);
  if (flags.metadataFile) {
    const meta: BuildMetadata = {
      // The image as outputs and pushes carry it (compressed layers), as BuildKit reports its exporter's.
      'containerimage.digest': (result.distributed ?? result.manifest).digest,
      ...(result.config ? { 'containerimage.config.digest': result.config.digest } : {}),
      'containerimage.descriptor': result.distributed ?? result.manifest,
      ...(result.names.length ? { 'image.name': result.names.join(',') } : {}),
    };
    await writeFile(flags.metadataFile, JSON.stringify(meta, null, 2) + '\n');
  }
  const pruned = await applyGcPolicy(stateRoot(globals.root, process.env), gcPolicy(settings), signal);
  if (pruned?.bytes && !flags.quiet) process.stderr.write(`gc policy: reclaimed ${formatBytes(pruned.bytes)}\n`);
  if (flags.quiet) process.stdout.write(imageId + '\n');
  else process.stderr.write(`image ${imageId}${result.names.length ? ` tagged ${result.names.join(', ')}` : ''}\n`);
  setExit(0);
}

/** The terminal as the --on-error shell takes it from the progress view; messages go to stderr with it. */
function terminalHandoff(progress: BuildProgress): TerminalHandoff {
  return {
    take: () => progress.suspend(),
    size: () => (process.stdout.rows && process.stdout.columns ? { height: process.stdout.rows, width: process.stdout.columns } : undefined),
    say: (line) => void process.stderr.write(line + '\n'),
  };
}

/** Every host path the build will write, checked before it starts: nothing lands in a system directory. */
async function checkBuildDests(outputs: readonly ExportTarget[], cacheTo: readonly CacheExportSpec[], flags: Pick<BuildFlags, 'iidfile' | 'metadataFile'>): Promise<void> {
  for (const o of outputs) {
    if (o.type === 'registry' || o.dest === STDOUT) continue;
    await checkOutputDest(o.dest, o.type === 'local' || (o.type === 'oci' && !o.tar) ? 'tree' : 'file', '--output');
  }
  for (const c of cacheTo) if (c.type === 'local') await checkOutputDest(c.dest, 'tree', '--cache-to');
  if (flags.iidfile) await checkOutputDest(flags.iidfile, 'file', '--iidfile');
  if (flags.metadataFile) await checkOutputDest(flags.metadataFile, 'file', '--metadata-file');
}

/** `--push`: BuildKit pushes every `-t` name; without one there is nothing to push to. */
function pushTargets(tags: readonly string[]): ExportTarget[] {
  if (tags.length === 0) throw new BuildError('USAGE', '--push needs at least one -t NAME to push to');
  return tags.map((name) => ({ type: 'registry', name }));
}

function parseBuildArgs(list: readonly string[], env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const a of list) {
    const eq = a.indexOf('=');
    if (eq === 0) throw new BuildError('USAGE', `--build-arg ${JSON.stringify(a)}: missing name before '='`);
    if (eq < 0) {
      // As docker: `--build-arg NAME` takes NAME from the environment, and is ignored when unset.
      if (env[a] !== undefined) out[a] = env[a]!;
    } else out[a.slice(0, eq)] = a.slice(eq + 1);
  }
  return out;
}

function parseBuildContexts(list: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const c of list) {
    const eq = c.indexOf('=');
    if (eq <= 0 || eq === c.length - 1) throw new BuildError('USAGE', `--build-context ${JSON.stringify(c)}: expected NAME=DIR, NAME=oci-layout://DIR[:TAG][@DIGEST] or NAME=docker-image://REF`);
    out[c.slice(0, eq)] = c.slice(eq + 1);
  }
  return out;
}


function parseKeyValues(flag: string, list: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of list) {
    const eq = l.indexOf('=');
    if (eq <= 0) throw new BuildError('USAGE', `${flag} ${JSON.stringify(l)}: expected KEY=VALUE`);
    out[l.slice(0, eq)] = l.slice(eq + 1);
  }
  return out;
}

const ANNOTATION_TYPE = /^(index|manifest|manifest-descriptor|index-descriptor)(\[[^\]]*\])?:/;

/**
 * BuildKit's `--annotation [TYPE:]KEY=VALUE`. A single-platform image has one manifest and no
 * index of its own, so `manifest` (the default) is the type that applies; others are refused
 * rather than dropped silently.
 */
function parseAnnotations(list: readonly string[]): Record<string, string> {
  const plain = list.map((a) => {
    const m = ANNOTATION_TYPE.exec(a);
    if (!m) return a;
    if (m[1] !== 'manifest' || m[2]) {
      throw new BuildError('USAGE', `--annotation ${JSON.stringify(a)}: only manifest annotations are supported for single-platform images`, {
        hint: 'use KEY=VALUE or manifest:KEY=VALUE',
      });
    }
    return a.slice(m[0].length);
  });
  return parseKeyValues('--annotation', plain);
}

/** buildx's `--call REQUEST[,format=json]`: build, check or targets. */
function parseCall(value: string | undefined): { request: 'build' | 'check' | 'targets'; json: boolean } {
  if (value === undefined) return { request: 'build', json: false };
  const [request, ...opts] = value.split(',').map((p) => p.trim());
  let json = false;
  for (const o of opts) {
    if (o === 'format=json') json = true;
    else if (o !== 'format=table') throw new BuildError('USAGE', `--call ${value}: unknown option ${JSON.stringify(o)}`, { hint: 'e.g. --call targets,format=json' });
  }
  if (request === 'build' || request === 'check' || request === 'targets') return { request, json };
  throw new BuildError('USAGE', `--call ${value}: unknown request ${JSON.stringify(request)}`, { hint: 'tsbuild answers build, check and targets (no outline)' });
}

/**
 * `--check`: the findings, one line each as `FILE:LINE: RULE: message`, then a summary, on
 * standard output. Exit 1 when there is any, as buildx.
 */
function printChecks({ checks: found, error }: { readonly checks: readonly CheckWarning[]; readonly error?: BuildError }): number {
  for (const w of found) process.stdout.write(`${relative(process.cwd(), w.location.file) || w.location.file}:${w.location.line}: ${w.rule}: ${w.message}\n`);
  // A Dockerfile that does not convert (or `# check=error=true` with findings): the findings so far, then the error.
  if (error) throw error;
  process.stdout.write(found.length ? `Check complete, ${found.length} warning${found.length > 1 ? 's have' : ' has'} been found!\n` : 'Check complete, no warnings found.\n');
  return found.length ? 1 : 0;
}

const ULIMITS = new Set(['as', 'core', 'cpu', 'data', 'fsize', 'locks', 'memlock', 'msgqueue', 'nice', 'nofile', 'nproc', 'rss', 'rtprio', 'rttime', 'sigpending', 'stack']);

/**
 * docker's `--ulimit nofile=1024[:2048]` (soft, then hard; one number sets both). Docker's -1
 * (unlimited) is refused: the spec wants 2^64-1, which a JSON number can't carry exactly.
 */
function parseUlimit(v: string): Ulimit {
  const m = /^([a-z]+)=(\d+)(?::(\d+))?$/.exec(v);
  const bad = (why: string) => new BuildError('USAGE', `--ulimit ${JSON.stringify(v)}: ${why}`, { hint: 'e.g. --ulimit nofile=1024:2048' });
  if (!m) throw bad('expected TYPE=SOFT[:HARD] with whole numbers (unlimited, -1, is not supported)');
  if (!ULIMITS.has(m[1]!)) throw bad(`unknown type ${JSON.stringify(m[1])} (one of ${[...ULIMITS].join(', ')})`);
  const soft = Number(m[2]!);
  const hard = m[3] !== undefined ? Number(m[3]) : soft;
  if (!Number.isSafeInteger(hard)) throw bad('the limit is too large');
  if (soft > hard) throw bad('the soft limit is above the hard one');
  return { type: `RLIMIT_${m[1]!.toUpperCase()}`, soft, hard };
}

function parseShmSize(v: string): number {
  const n = parseByteSize(v);
  if (n === undefined || n <= 0) throw new BuildError('USAGE', `--shm-size ${JSON.stringify(v)}: expected a size such as 64m or 1g`);
  return n;
}

/** `--add-host name:ip` (or `name=ip`, as newer docker); the IP may be IPv6, so the name ends at the first separator. */
function parseAddHost(v: string): { host: string; ip: string } {
  const m = /^([^:=\s]+)[:=](\S+)$/.exec(v);
  const ip = m?.[2]?.replace(/^\[(.*)\]$/, '$1');
  if (!m || !ip || !(isIP(ip) || ip === 'host-gateway')) {
    throw new BuildError('USAGE', `--add-host ${JSON.stringify(v)}: expected HOST:IP (e.g. db:10.0.0.5)`);
  }
  if (ip === 'host-gateway') throw new BuildError('USAGE', `--add-host ${JSON.stringify(v)}: host-gateway needs a bridge network; RUN's private network has none (and never reaches the host's loopback), so give the host's address`);
  return { host: m[1]!, ip };
}

/** `--platform linux/amd64,linux/arm64`: each checked and normalized, repeats dropped, order kept. */
function parsePlatforms(value: string): Platform[] {
  const out = new Map<string, Platform>();
  for (const p of value.split(',').map((x) => x.trim()).filter(Boolean)) {
    let parsed: Platform;
    try {
      parsed = parsePlatform(p);
    } catch (e) {
      throw new BuildError('USAGE', `--platform ${value}: ${(e as Error).message}`);
    }
    out.set(formatPlatform(parsed), parsed);
  }
  if (out.size === 0) throw new BuildError('USAGE', '--platform: expected os/arch[/variant], e.g. linux/amd64');
  return [...out.values()];
}

/** `--squash` and `--squash-all` (podman's pair; Buildah's bud has only the first): one at most. */
function squashOption(flags: Pick<BuildFlags, 'squash' | 'squashAll'>): { squash?: SquashMode } {
  if (flags.squash && flags.squashAll) throw new BuildError('USAGE', '--squash and --squash-all: use one (--squash keeps the base image\'s layers, --squash-all makes one layer in all)');
  return flags.squashAll ? { squash: 'all' } : flags.squash ? { squash: 'new' } : {};
}

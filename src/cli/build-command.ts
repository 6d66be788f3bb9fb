import { Command, Option } from 'commander';
import { BuildError } from '../errors.js';
import type { GlobalOptions } from './globals.js';
import type { RunLimitFlags } from './run-limit-flags.js';

const collect = (v: string, prev: string[]) => [...prev, v];

export interface BuildFlags extends RunLimitFlags {
  file?: string;
  tag: string[];
  buildArg: string[];
  buildArgFile: string[];
  sourceDateEpoch?: string;
  target?: string;
  platform?: string;
  cache: boolean;
  /** commander names `--no-cache-filter` after its negated form. */
  cacheFilter: string[];
  explain?: boolean;
  squash?: boolean;
  squashAll?: boolean;
  cacheTo: string[];
  cacheFrom: string[];
  maxParallelism?: number;
  output: string[];
  push?: boolean;
  pull?: boolean;
  progress?: string;
  label: string[];
  annotation: string[];
  network?: string;
  addHost: string[];
  ulimit: string[];
  shmSize?: string;
  provenance?: string | boolean;
  attest: string[];
  check?: boolean;
  call?: string;
  secret: string[];
  buildContext: string[];
  ssh: string[];
  allow: string[];
  onError?: string;
  iidfile?: string;
  metadataFile?: string;
  quiet?: boolean;
}

export function buildCommand(globals: GlobalOptions, signal: AbortSignal, setExit: (code: number) => void): Command {
  return new Command('build')
    .description('build an image from a Dockerfile and a context directory')
    .argument('<context>', 'build context: a directory, - for a tar (or a lone Dockerfile) on standard input, a git URL (URL#REF:SUBDIR) or an http(s) tarball URL')
    .option('-f, --file <path>', 'Dockerfile (default: CONTEXT/Dockerfile); - reads it from standard input')
    .option('-t, --tag <name[:tag]>', 'name the image in the local store (repeatable)', collect, [])
    .option('--build-arg <key[=value]>', 'set a build argument; without a value, taken from the environment (repeatable)', collect, [])
    .option('--build-arg-file <file>', 'read build arguments from a file of KEY=VALUE lines (repeatable; --build-arg wins)', collect, [])
    .option('--source-date-epoch <seconds|context|git>', 'SOURCE_DATE_EPOCH for this build (wins over --build-arg and the environment): the time of its steps and image; context or git: the context\'s last commit')
    .option('--target <stage>', 'build this stage')
    .option('--platform <os/arch[/variant],...>', 'target platforms (default: the host\'s); several make an image index')
    .option('--no-cache', 'do not use the build cache')
    .option('--no-cache-filter <stage>', 'do not use the build cache for these stages (repeatable, comma-separated)', collect, [])
    .option('--explain', 'print why each first cache miss of a chain missed')
    .option('--squash', 'the layers this build adds become one layer on the base image\'s (the cache still works per step)')
    .option('--squash-all', 'the whole image becomes one layer (the cache still works per step)')
    .option('--cache-to <spec>', 'export the build cache: type=registry,ref=REPO:TAG[,mode=min|max] or type=local,dest=DIR[,mode=…] (repeatable)', collect, [])
    .option('--cache-from <spec>', 'import a build cache: type=registry,ref=REPO:TAG or type=local,src=DIR (repeatable)', collect, [])
    .option('--max-parallelism <n>', 'RUN steps run at once (default: no limit, as BuildKit)', parsePositiveInt)
    .option('-o, --output <spec>', 'export: type=oci|docker|local|tar|registry,dest=…[,tar=false][,oci-mediatypes=true|false]; dest=- (or -o -) is standard output (repeatable)', collect, [])
    .option('--push', 'push every -t name to its registry (same as --output type=registry,name=NAME)')
    .option('--pull', 'check the registry for newer base images even when they are in the local store')
    .addOption(new Option('--progress <mode>', 'progress output').choices(['auto', 'tty', 'plain', 'rawjson', 'quiet']))
    .option('--label <key=value>', 'set an image label (repeatable)', collect, [])
    .option('--annotation <[manifest:]key=value>', 'add an annotation to the image manifest (repeatable)', collect, [])
    .addOption(new Option('--network <mode>', 'network of RUN steps that name none (default: a private one; host needs --allow network.host)').choices(['host', 'none', 'default']))
    .option('--add-host <host:ip>', 'add an /etc/hosts entry for RUN steps (repeatable)', collect, [])
    .option('--ulimit <type=soft[:hard]>', 'resource limit for RUN steps, e.g. nofile=1024:2048 (repeatable)', collect, [])
    .option('--shm-size <size>', 'size of /dev/shm in RUN steps (default 64m)')
    .option('-m, --memory <size>', 'memory limit of RUN steps, e.g. 512m or 1g')
    .option('--memory-swap <size>', 'memory plus swap limit of RUN steps; -1 for unlimited swap (default: twice --memory)')
    .option('--cpu-shares <n>', 'relative CPU weight of RUN steps (default 1024)')
    .option('--cpus <n>', 'CPUs RUN steps may use, e.g. 0.5 or 2')
    .option('--cpu-period <us>', 'CFS period of RUN steps in microseconds (with --cpu-quota)')
    .option('--cpu-quota <us>', 'CFS quota of RUN steps in microseconds per period')
    .option('--cpuset-cpus <list>', 'CPUs RUN steps may run on, e.g. 0-3 or 0,2')
    .option('--cpuset-mems <list>', 'memory nodes RUN steps may use, e.g. 0')
    .option('--pids-limit <n>', 'maximum processes in a RUN step (default 2048; -1 or 0 for no limit)')
    .option('--provenance [spec]', 'attach a SLSA provenance attestation: true (= mode=min), false, or mode=min|max,version=v1|v0.2')
    .option('--attest <spec>', 'attestation to attach: type=provenance[,mode=min|max][,version=v1|v0.2] (repeatable)', collect, [])
    .option('--build-context <name=DIR|oci-layout://DIR[:TAG][@DIGEST]|docker-image://REF>', 'a named context for FROM and --from (repeatable)', collect, [])
    .option('--secret <id=ID,src=PATH|env=VAR>', 'a secret for RUN --mount=type=secret (repeatable)', collect, [])
    .option('--ssh <id[=socket]>', 'forward an ssh agent socket for RUN --mount=type=ssh (default: $SSH_AUTH_SOCK) (repeatable)', collect, [])
    .option('--allow <entitlement>', 'grant security.insecure (RUN --security=insecure), network.host (RUN --network=host) or debug.secrets (secrets in the --on-error shell) (repeatable)', collect, [])
    .option('--on-error <fail|shell|shell:CMD>', 'when a RUN fails: fail (default), or first open its shell (shell:CMD runs CMD) in the failed step\'s container on this terminal')
    .option('--iidfile <file>', 'write the image ID (config digest) to this file')
    .option('--metadata-file <file>', 'write build result metadata (BuildKit keys) as JSON')
    .option('-q, --quiet', 'print only the image ID')
    .option('--check', 'run the build checks (BuildKit\'s lint rules) on the Dockerfile and exit without building')
    .option('--call <request>', 'what to do, as buildx: build (default), check (as --check), targets[,format=json] (list the stages)')
    // The build itself (and all it imports) is loaded only when it runs, not for --help.
    .action(async (context: string, flags: BuildFlags) => (await import('./build-action.js')).buildAction(context, flags, globals, signal, setExit));
}

function parsePositiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new BuildError('USAGE', `--max-parallelism ${JSON.stringify(v)}: expected a positive integer`);
  return n;
}

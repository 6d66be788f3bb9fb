import { existsSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { BuildError } from '../errors.js';
import type { SecretSource } from '../solver/ops/run-mounts.js';

/**
 * `--secret id=ID[,src=PATH|,env=VAR][,type=file|env]` (docker buildx syntax). A file is only
 * checked here and read when a RUN mounts it; an env secret is read now, since the solver never
 * looks at this process's environment. Without src/env the variable named ID is used when set,
 * else the file ID, as buildx does.
 */
export function parseSecrets(list: readonly string[], env: NodeJS.ProcessEnv): Map<string, SecretSource> {
  const out = new Map<string, SecretSource>();
  for (const spec of list) {
    const kv = new Map<string, string>();
    for (const field of spec.split(',')) {
      const eq = field.indexOf('=');
      if (eq <= 0) throw new BuildError('USAGE', `--secret ${JSON.stringify(spec)}: expected key=value fields (id=ID,src=PATH or id=ID,env=VAR)`);
      kv.set(field.slice(0, eq).trim().toLowerCase(), field.slice(eq + 1));
    }
    const id = kv.get('id');
    if (!id) throw new BuildError('USAGE', `--secret ${JSON.stringify(spec)}: id is required`);
    const type = kv.get('type');
    const src = kv.get('src') ?? kv.get('source');
    let name = kv.get('env');
    if (type === 'env' && !name) name = src ?? id;
    if (name !== undefined || (!src && type !== 'file' && env[id] !== undefined)) {
      const v = env[name ?? id];
      if (v === undefined) throw new BuildError('USAGE', `--secret id=${id}: environment variable ${name ?? id} is not set`);
      out.set(id, { value: Buffer.from(v, 'utf8') });
      continue;
    }
    const file = src ?? id;
    if (!existsSync(file)) throw new BuildError('USAGE', `--secret id=${id}: file ${file} not found`);
    out.set(id, { file });
  }
  return out;
}

/** `--ssh ID[=SOCKET]`: without a socket, $SSH_AUTH_SOCK; only agent sockets, not key files. */
export function parseSsh(list: readonly string[], env: NodeJS.ProcessEnv): Map<string, string> {
  const out = new Map<string, string>();
  for (const spec of list) {
    const eq = spec.indexOf('=');
    const id = eq < 0 ? spec : spec.slice(0, eq);
    const sock = eq < 0 ? env.SSH_AUTH_SOCK : spec.slice(eq + 1);
    if (!id) throw new BuildError('USAGE', `--ssh ${JSON.stringify(spec)}: expected ID[=SOCKET]`);
    if (!sock) throw new BuildError('USAGE', `--ssh ${id}: SSH_AUTH_SOCK is not set`, { hint: 'start an ssh-agent or give the socket: --ssh default=/path/to/agent.sock' });
    out.set(id, sock);
  }
  return out;
}

/** BuildKit's entitlements: what `--allow` (and `allow` under [build] in tsbuild.toml) may grant. */
export const ENTITLEMENTS = ['security.insecure', 'network.host'] as const;
/**
 * tsbuild's own, for `--allow` only (never a config default): the --on-error shell gets the failed
 * RUN's secrets, a choice made for one build at the terminal.
 */
export const DEBUG_SECRETS = 'debug.secrets';

/** `--allow` entitlements: RUN --security=insecure, the host's network for RUN, secrets in the --on-error shell. */
export function parseAllow(list: readonly string[]): { allowInsecure: boolean; allowNetworkHost: boolean; allowDebugSecrets: boolean } {
  let allowInsecure = false;
  let allowNetworkHost = false;
  let allowDebugSecrets = false;
  for (const a of list.flatMap((x) => x.split(','))) {
    if (a === 'security.insecure') allowInsecure = true;
    else if (a === 'network.host') allowNetworkHost = true;
    else if (a === DEBUG_SECRETS) allowDebugSecrets = true;
    else throw new BuildError('USAGE', `--allow ${JSON.stringify(a)}: unknown entitlement`, { hint: `known: ${[...ENTITLEMENTS, DEBUG_SECRETS].join(', ')}` });
  }
  return { allowInsecure, allowNetworkHost, allowDebugSecrets };
}

/** Files larger than this are keys or bundles, not values a step name could hold. */
const MASK_READ_LIMIT = 64 * 1024;

/**
 * The secrets' values, to mask in progress (see secret-mask.ts): env values, and the content of
 * each small secret file (also without its trailing newline), read once now.
 */
export async function secretValues(secrets: ReadonlyMap<string, SecretSource>): Promise<string[]> {
  const out: string[] = [];
  for (const src of secrets.values()) {
    let text: string;
    if ('value' in src) text = src.value.toString('utf8');
    else {
      // A pipe or device is read by the RUN, once; only regular files are read here.
      const st = await stat(src.file).catch(() => undefined);
      if (!st?.isFile() || st.size > MASK_READ_LIMIT) continue;
      const fh = await open(src.file, 'r');
      try {
        const buf = Buffer.alloc(MASK_READ_LIMIT + 1);
        const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
        if (bytesRead > MASK_READ_LIMIT) continue;
        text = buf.subarray(0, bytesRead).toString('utf8');
      } finally {
        await fh.close();
      }
    }
    out.push(text, text.replace(/\r?\n$/, ''));
  }
  return out;
}

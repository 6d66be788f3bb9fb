import { makeVertex } from '../solver/graph.js';
import type { Instruction } from './instructions.js';
import { commandArgs, runArgEnv } from './convert-meta.js';
import { DEFAULT_PATH, commitHistory, expansionEnv, stepName, type ConvertEnv, type StageState } from './stage-state.js';

/** Proxy build-args: exported to RUN when given, without an ARG and without a history record. */
const PROXY_ARGS = ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy'];

/**
 * RUN → ExecOp on the current rootfs. `--network=default` maps to `host`: tsbuild's sandbox never
 * creates a bridge, so "default" networking is the host's.
 */
export function convertRun(ins: Extract<Instruction, { kind: 'RUN' }>, st: StageState, env: ConvertEnv): void {
  const args = commandArgs(ins.cmd, st);
  const configEnv = st.config.config.Env ?? [];
  const runEnv = [...configEnv, ...runArgEnv(st)];
  if (!runEnv.some((e) => e.startsWith('PATH='))) runEnv.unshift(DEFAULT_PATH);
  const declared = new Set(st.args.map((a) => a.key));
  for (const k of PROXY_ARGS) {
    const v = env.buildArgs[k];
    if (v !== undefined && !declared.has(k) && !runEnv.some((e) => e.startsWith(`${k}=`))) runEnv.push(`${k}=${v}`);
  }
  const name = stepName(st, ins.original);
  const vertex = makeVertex(
    {
      kind: 'exec',
      args,
      env: runEnv,
      cwd: st.config.config.WorkingDir || '/',
      user: st.config.config.User ?? '',
      network: ins.network === 'none' ? 'none' : 'host',
    },
    st.vertex ? [st.vertex] : [],
    { name, location: ins.location },
  );
  st.vertex = vertex;
  commitHistory(st, `RUN ${runCommandString(args, st)}`, true, vertex, true);
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

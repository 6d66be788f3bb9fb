import { posix } from 'node:path';
import { BuildError } from '../errors.js';
import type { Healthcheck } from '../oci/image.js';
import { makeVertex } from '../solver/graph.js';
import type { Instruction } from './instructions.js';
import { parsePortSpec } from './expose.js';
import { parseGoDuration, formatGoDuration } from './go-duration.js';
import {
  defaultShell, addEnv, argValues, commitHistory, expansionEnv, goQuoteList, stepName,
  type ConvertEnv, type StageState,
} from './stage-state.js';

/**
 * Instructions that change the image config (plus WORKDIR's mkdir and ARG): BuildKit's
 * dispatchEnv/Label/Cmd/Entrypoint/Expose/Volume/User/Workdir/… with their history records.
 */

type Of<K extends Instruction['kind']> = Extract<Instruction, { kind: K }>;

const word = (env: ConvertEnv, st: StageState, w: string): string => env.lexer.processWord(w, expansionEnv(st));

/** ARG inside a stage: build-arg > declared default > global value. */
export function convertArg(ins: Of<'ARG'>, st: StageState, env: ConvertEnv): void {
  const parts: string[] = [];
  for (const a of ins.args) {
    let value: string | undefined;
    if (Object.prototype.hasOwnProperty.call(env.buildArgs, a.key)) value = env.buildArgs[a.key];
    else if (a.value !== undefined) value = word(env, st, a.value);
    else if (env.metaArgs.has(a.key)) value = env.metaArgs.get(a.key);
    st.args.push({ key: a.key, value });
    if (value !== undefined) st.argOverEnv.set(a.key, value);
    parts.push(value === undefined ? a.key : `${a.key}=${value}`);
  }
  commitHistory(st, `ARG ${parts.join(' ')}`, false);
}

export function convertEnv(ins: Of<'ENV'>, st: StageState, env: ConvertEnv): void {
  const before = expansionEnv(st);
  const pairs = ins.pairs.map((p) => ({ key: env.lexer.processWord(p.key, before), value: env.lexer.processWord(p.value, before) }));
  let list = st.config.config.Env ?? [];
  for (const p of pairs) {
    list = addEnv(list, p.key, p.value);
    st.argOverEnv.delete(p.key);
  }
  st.config.config.Env = list;
  commitHistory(st, `ENV ${pairs.map((p) => `${p.key}=${p.value}`).join(' ')}`, false);
}

export function convertLabel(ins: Of<'LABEL'>, st: StageState, env: ConvertEnv): void {
  const pairs = ins.pairs.map((p) => ({ key: word(env, st, p.key), value: word(env, st, p.value) }));
  const labels = (st.config.config.Labels ??= {});
  for (const p of pairs) labels[p.key] = p.value;
  commitHistory(st, `LABEL ${pairs.map((p) => `${p.key}=${p.value}`).join(' ')}`, false);
}

/** Shell form → `[...SHELL, cmdline]`; exec form as written. */
export function commandArgs(cmd: { prependShell: boolean; args: readonly string[] }, st: StageState): string[] {
  if (!cmd.prependShell) return [...cmd.args];
  return [...(st.config.config.Shell ?? defaultShell(st.config.os)), cmd.args.join(' ')];
}

export function convertCmd(ins: Of<'CMD' | 'ENTRYPOINT'>, st: StageState): void {
  const args = commandArgs(ins.cmd, st);
  // An empty list is written as absent: BuildKit's Go config has `omitempty` on both fields.
  const key = ins.kind === 'CMD' ? 'Cmd' : 'Entrypoint';
  if (args.length > 0) st.config.config[key] = args;
  else delete st.config.config[key];
  if (ins.kind === 'CMD') {
    st.cmdSet = true;
    // BuildKit's dispatchCmd sets it on every CMD (deprecated in OCI, kept for Docker's image spec).
    st.config.config.ArgsEscaped = true;
  } else {
    // BuildKit: a new ENTRYPOINT drops the CMD inherited from the base unless this stage set one.
    if (!st.cmdSet) delete st.config.config.Cmd;
  }
  commitHistory(st, `${ins.kind} ${goQuoteList(args)}`, false);
}

export function convertExpose(ins: Of<'EXPOSE'>, st: StageState, env: ConvertEnv): void {
  const words = ins.ports.flatMap((p) => env.lexer.processWords(p, expansionEnv(st)));
  const ports = new Set<string>();
  for (const w of words) {
    try {
      for (const p of parsePortSpec(w)) ports.add(p);
    } catch (e) {
      throw new BuildError('INVALID_INSTRUCTION', (e as Error).message, { location: ins.location });
    }
  }
  const exposed = (st.config.config.ExposedPorts ??= {});
  for (const p of ports) exposed[p] = {};
  commitHistory(st, `EXPOSE [${[...ports].sort().join(' ')}]`, false);
}

export function convertVolume(ins: Of<'VOLUME'>, st: StageState, env: ConvertEnv): void {
  const vols = ins.volumes.map((v) => word(env, st, v));
  for (const v of vols) if (v === '') throw new BuildError('INVALID_INSTRUCTION', 'VOLUME specified can not be an empty string', { location: ins.location });
  const volumes = (st.config.config.Volumes ??= {});
  for (const v of vols) volumes[v] = {};
  commitHistory(st, `VOLUME [${vols.join(' ')}]`, false);
}

export function convertSimple(ins: Of<'USER' | 'STOPSIGNAL' | 'MAINTAINER' | 'SHELL' | 'ONBUILD'>, st: StageState, env: ConvertEnv): void {
  const c = st.config.config;
  let msg: string;
  switch (ins.kind) {
    case 'USER':
      c.User = word(env, st, ins.user);
      msg = `USER ${c.User}`;
      break;
    case 'STOPSIGNAL': {
      const sig = word(env, st, ins.signal);
      if (!/^(SIG)?[A-Z0-9+-]+$/i.test(sig)) throw new BuildError('INVALID_INSTRUCTION', `Invalid signal: ${sig}`, { location: ins.location });
      c.StopSignal = sig;
      msg = `STOPSIGNAL ${sig}`;
      break;
    }
    case 'MAINTAINER':
      st.config.author = ins.maintainer;
      msg = `MAINTAINER ${ins.maintainer}`;
      break;
    case 'SHELL':
      c.Shell = [...ins.shell];
      msg = `SHELL [${ins.shell.join(' ')}]`;
      break;
    case 'ONBUILD':
      // BuildKit's dispatchOnbuild only records the trigger: no history entry.
      c.OnBuild = [...(c.OnBuild ?? []), ins.expression];
      return;
    default: {
      const never: never = ins;
      throw new Error(`unhandled ${(never as Instruction).kind}`);
    }
  }
  commitHistory(st, msg, false);
}

export function convertHealthcheck(ins: Of<'HEALTHCHECK'>, st: StageState): void {
  const hc: Healthcheck = { Test: [...ins.test] };
  const dur = (name: string, v: string | undefined): number => {
    if (v === undefined || v === '') return 0;
    let ns: number;
    try {
      ns = parseGoDuration(v);
    } catch (e) {
      throw new BuildError('INVALID_INSTRUCTION', (e as Error).message, { location: ins.location });
    }
    if (ns !== 0 && ns < 1_000_000) throw new BuildError('INVALID_INSTRUCTION', `Interval "${name}" cannot be less than 1ms`, { location: ins.location });
    if (ns < 0) throw new BuildError('INVALID_INSTRUCTION', `Interval "${name}" cannot be negative`, { location: ins.location });
    return ns;
  };
  const fields = {
    Interval: dur('interval', ins.interval),
    Timeout: dur('timeout', ins.timeout),
    StartPeriod: dur('start-period', ins.startPeriod),
    StartInterval: dur('start-interval', ins.startInterval),
  };
  for (const [k, v] of Object.entries(fields)) if (v !== 0) (hc as Record<string, unknown>)[k] = v;
  let retries = 0;
  if (ins.retries !== undefined && ins.retries !== '') {
    retries = Number.parseInt(ins.retries, 10);
    if (!/^[+-]?\d+$/.test(ins.retries)) throw new BuildError('INVALID_INSTRUCTION', `strconv.ParseInt: parsing ${JSON.stringify(ins.retries)}: invalid syntax`, { location: ins.location });
    if (retries < 0) throw new BuildError('INVALID_INSTRUCTION', `--retries cannot be negative (${retries})`, { location: ins.location });
    if (retries !== 0) hc.Retries = retries;
  }
  st.config.config.Healthcheck = hc;
  const q = (ns: number): string => JSON.stringify(formatGoDuration(ns));
  const retriesQ = `'\\x${retries.toString(16).padStart(2, '0')}'`;
  commitHistory(st, `HEALTHCHECK &{${goQuoteList(hc.Test ?? [])} ${q(fields.Interval)} ${q(fields.Timeout)} ${q(fields.StartPeriod)} ${q(fields.StartInterval)} ${retriesQ}}`, false);
}

/** WORKDIR: config WorkingDir, plus a mkdir step (chowned to USER when set) unless it is `/`. */
export function convertWorkdir(ins: Of<'WORKDIR'>, st: StageState, env: ConvertEnv): void {
  const p = word(env, st, ins.path);
  const wd = posix.resolve(st.config.config.WorkingDir || '/', p);
  st.config.config.WorkingDir = wd;
  if (wd === '/') {
    commitHistory(st, `WORKDIR ${wd}`, false);
    return;
  }
  const name = stepName(st, ins.original);
  const user = st.config.config.User;
  const chown = user ? splitChown(user) : undefined;
  const vertex = makeVertex(
    { kind: 'file', base: st.vertex ? 'input' : 'scratch', actions: [{ type: 'mkdir', path: wd, mode: 0o755, ...(chown ? { chown } : {}) }] },
    st.vertex ? [st.vertex] : [],
    { name, location: ins.location },
  );
  st.vertex = vertex;
  commitHistory(st, `WORKDIR ${wd}`, true, vertex);
}

/** `user[:group]` → Chown. */
export function splitChown(s: string): { user: string; group?: string } {
  const i = s.indexOf(':');
  return i < 0 ? { user: s } : { user: s.slice(0, i), group: s.slice(i + 1) };
}

/**
 * RUN's environment before PATH and proxies: the config's Env, where an ARG assigned after a
 * key's ENV replaces its value (see StageState.argOverEnv), then the other valued ARGs.
 */
export function runEnvOf(st: StageState): string[] {
  const env = (st.config.config.Env ?? []).map((e) => {
    const k = e.includes('=') ? e.slice(0, e.indexOf('=')) : e;
    return st.argOverEnv.has(k) ? `${k}=${st.argOverEnv.get(k)}` : e;
  });
  const keys = new Set(env.map((e) => (e.includes('=') ? e.slice(0, e.indexOf('=')) : e)));
  for (const [k, v] of argValues(st)) if (v !== undefined && !keys.has(k)) env.push(`${k}=${v}`);
  return env;
}

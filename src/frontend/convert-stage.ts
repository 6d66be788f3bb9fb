import { BuildError, type SourceLocation } from '../errors.js';
import { parsePlatform } from '../oci/platform.js';
import type { ContainerConfig, ImageConfig, Platform } from '../oci/image.js';
import type { Vertex } from '../solver/graph.js';
import { parseInstruction, type Instruction } from './instructions.js';
import { editDistance, parseDockerfile } from './parse.js';
import { convertArg, convertCmd, convertEnv, convertExpose, convertHealthcheck, convertLabel, convertSimple, convertVolume, convertWorkdir } from './convert-meta.js';
import { convertRun } from './convert-run.js';
import { checkUndefinedVars } from './undefined-vars.js';
import { convertCopy } from './convert-copy.js';
import { countSteps, defaultPath, newStageVars, stepName, type ConvertEnv, type StageState } from './stage-state.js';
import type { StageDef } from './compile.js';

export interface ResolvedImage {
  /** Undefined: an empty root filesystem (a `docker-image://scratch` named context). */
  readonly vertex?: Vertex;
  readonly config: ImageConfig;
  readonly ref: string;
}

/** How a stage reaches its base: an earlier stage by name, or an image. */
export interface StageSource {
  stage(name: string, currentIndex: number, loc: SourceLocation): Promise<StageState | undefined>;
  image(ref: string, platform: Platform, loc: SourceLocation): Promise<ResolvedImage>;
}

type Located = <T>(loc: SourceLocation, f: () => Promise<T>) => Promise<T>;

/**
 * Converts one stage: FROM (scratch, earlier stage or image, with its ONBUILD triggers), then
 * each instruction in order. Errors carry the instruction's location.
 */
export async function convertStage(def: StageDef, index: number, stageCount: number, env: ConvertEnv, sources: StageSource, located: Located): Promise<StageState> {
  const from = def.from;
  const metaGet = { get: (k: string) => env.metaArgs.get(k) };
  const { imageName, platform } = await located(from.location, async () => {
    const imageName = env.lexer.processWord(from.image, metaGet);
    if (imageName === '') throw new BuildError('INVALID_INSTRUCTION', `base name (${from.image}) should not be blank`);
    const platform = from.platform !== undefined ? fromPlatform(from.platform, env) : undefined;
    return { imageName, platform };
  });

  let vertex: Vertex | undefined;
  let base: ImageConfig | undefined;
  let inherited: StageState | undefined;
  let fromText = imageName;
  if (imageName.toLowerCase() !== 'scratch') {
    inherited = await sources.stage(imageName, index, from.location);
    if (inherited) {
      vertex = inherited.vertex;
      base = inherited.config;
    } else {
      const img = await sources.image(imageName, platform ?? env.platform, from.location);
      vertex = img.vertex;
      base = img.config;
      fromText = img.ref;
    }
  }

  const config = baseConfig(base, env.platform);
  const triggers = config.config.OnBuild ?? [];
  delete config.config.OnBuild;
  const triggerInstructions = triggers.map((t) => parseTrigger(t, from.location, env));

  // BuildKit counts FROM as a step for an image, not for scratch or another stage.
  const fromImage = imageName.toLowerCase() !== 'scratch' && !inherited;
  const label = env.platformLabel + (stageCount === 1 && !def.name ? '' : `${def.name ?? `stage-${index}`} `);
  const st: StageState = {
    index,
    name: def.name,
    label,
    platform: platform ?? inherited?.platform ?? env.platform,
    vertex,
    config,
    args: inherited ? [...inherited.args] : [],
    argOverEnv: new Map(inherited?.argOverEnv),
    cmdSet: false,
    vars: newStageVars(),
    cmdIndex: 0,
    cmdTotal: countSteps(fromImage, def.commands, triggerInstructions.length),
    inTrigger: false,
    layerSteps: inherited ? [...inherited.layerSteps] : [],
    inheritedSteps: inherited?.layerSteps.length ?? 0,
  };
  if (fromImage) stepName(st, `FROM ${fromText}`);

  for (const [i, ins] of [...triggerInstructions, ...def.commands].entries()) {
    env.ctx.signal.throwIfAborted();
    st.inTrigger = i < triggerInstructions.length;
    checkUndefinedVars(ins, st, env, (rule, message, loc) => env.lint(rule, message, loc, ins.comments));
    checkShellForm(ins, st, env);
    await located(ins.location, () => dispatch(ins, st, env));
  }
  return st;
}

/**
 * JSONArgsRecommended: a shell-form CMD or ENTRYPOINT, unless the stage's config has a SHELL
 * (its own, or its base's): whoever changed the shell chose how commands run (BuildKit's
 * dispatchCmd checks `len(d.image.Config.Shell) == 0`).
 */
function checkShellForm(ins: Instruction, st: StageState, env: ConvertEnv): void {
  if ((ins.kind !== 'CMD' && ins.kind !== 'ENTRYPOINT') || !ins.cmd.prependShell) return;
  if (st.config.config.Shell?.length) return;
  env.lint('JSONArgsRecommended', `JSON arguments recommended for ${ins.kind} to prevent unintended behavior related to OS signals`, ins.location, ins.comments);
}

async function dispatch(ins: Instruction, st: StageState, env: ConvertEnv): Promise<void> {
  switch (ins.kind) {
    case 'ARG': return convertArg(ins, st, env);
    case 'ENV': return convertEnv(ins, st, env);
    case 'LABEL': return convertLabel(ins, st, env);
    case 'CMD':
    case 'ENTRYPOINT': return convertCmd(ins, st);
    case 'EXPOSE': return convertExpose(ins, st, env);
    case 'VOLUME': return convertVolume(ins, st, env);
    case 'USER':
    case 'STOPSIGNAL':
    case 'MAINTAINER':
    case 'SHELL':
    case 'ONBUILD': return convertSimple(ins, st, env);
    case 'HEALTHCHECK': return convertHealthcheck(ins, st);
    case 'WORKDIR': return convertWorkdir(ins, st, env);
    case 'RUN': return convertRun(ins, st, env);
    case 'COPY':
    case 'ADD': return convertCopy(ins, st, env);
    case 'FROM': throw new BuildError('INTERNAL', 'FROM inside a stage', { location: ins.location });
    default: {
      const never: never = ins;
      throw new Error(`unhandled instruction ${(never as Instruction).kind}`);
    }
  }
}

/**
 * `FROM --platform=<expr>` evaluated with the global ARGs; its errors are BuildKit's, with a
 * did-you-mean for an undeclared ARG in the expression.
 */
function fromPlatform(expr: string, env: ConvertEnv): Platform {
  const value = env.lexer.processWord(expr, { get: (k: string) => env.metaArgs.get(k) });
  const names = [...env.metaArgs.keys()];
  const undeclared = [...expr.matchAll(/(?<!\\)\$(?:\{([A-Za-z_][A-Za-z0-9_]*)|([A-Za-z_][A-Za-z0-9_]*))/g)].map((m) => m[1] ?? m[2]!).filter((k) => !env.metaArgs.has(k));
  const near = undeclared.map((k) => names.map((n) => [n, editDistance(n, k)] as const).filter(([, d]) => d <= 2).sort((a, b) => a[1] - b[1])[0]?.[0]).find((n) => n !== undefined);
  const suggest = near ? ` (did you mean ${near}?)` : '';
  if (value === '') throw new BuildError('INVALID_INSTRUCTION', `empty platform value from expression ${expr}${suggest}`);
  const bad = value.split('/').find((c) => !/^[A-Za-z0-9_.-]+$/.test(c));
  if (bad !== undefined) {
    // containerd's platforms.Parse message.
    throw new BuildError('INVALID_INSTRUCTION', `failed to parse platform ${expr}: ${JSON.stringify(bad)} is an invalid component of ${JSON.stringify(value)}: platform specifier component must match "^[A-Za-z0-9_.-]+$": invalid argument${suggest}`);
  }
  try {
    return parsePlatform(value, 'INVALID_INSTRUCTION');
  } catch (e) {
    throw e instanceof BuildError ? new BuildError(e.code, `failed to parse platform ${expr}: ${e.message}${suggest}`) : e;
  }
}

/** A copy of the base config (or BuildKit's empty image) set up for this build's platform. */
function baseConfig(base: ImageConfig | undefined, platform: Platform): StageState['config'] {
  // History entries are never changed once written: cloning them deeply per stage made a chain
  // of n `FROM previous-stage` stages cost O(n²) clones.
  const { history, ...rest } = base ?? { rootfs: { type: 'layers', diff_ids: [] } };
  const c = (base ? { ...structuredClone(rest), ...(history ? { history } : {}) } : rest) as ImageConfig & { config?: ContainerConfig };
  delete c.created;
  c.architecture = platform.architecture;
  c.os = platform.os;
  if (platform.variant) c.variant = platform.variant;
  else delete c.variant;
  c.rootfs = { type: 'layers', diff_ids: [] };
  c.history = c.history ? [...c.history] : [];
  const cc: ContainerConfig = c.config ?? {};
  if (!base) cc.WorkingDir = '/';
  const path = defaultPath(platform.os);
  if (path && !(cc.Env ?? []).some((e) => e.startsWith('PATH='))) cc.Env = [path, ...(cc.Env ?? [])];
  c.config = cc;
  return c as StageState['config'];
}

function parseTrigger(text: string, loc: SourceLocation, env: ConvertEnv): Instruction {
  const parsed = parseDockerfile(text, env.file);
  if (parsed.errors.length > 0 || parsed.instructions.length !== 1) {
    throw new BuildError('INVALID_INSTRUCTION', `invalid ONBUILD trigger from base image: ${JSON.stringify(text)}`, { location: loc });
  }
  const raw = { ...parsed.instructions[0]!, location: loc };
  const ins = parseInstruction(raw, env.lexer.escapeToken);
  if (ins.kind === 'FROM' || ins.kind === 'ONBUILD' || ins.kind === 'MAINTAINER') {
    throw new BuildError('INVALID_INSTRUCTION', `${ins.kind} isn't allowed as an ONBUILD trigger`, { location: loc });
  }
  return ins;
}

import { BuildError, type SourceLocation } from '../errors.js';
import { parseDirective } from './directives.js';
import type { Instruction } from './instructions.js';
import { editDistance } from './parse.js';
import { ShellLexer } from './shell-lexer.js';
import { PLATFORM_ARGS } from './stage-state.js';
import { parseReference } from '../oci/reference.js';
import { splitFields } from './words.js';
import { LayerHygiene } from './layer-hygiene-checks.js';
import { DEFAULT_CHECK_CONFIG, parseCheckOptions, ruleEnabled, withComments, type CheckConfig } from './check-rules.js';

/** One finding of a build check (BuildKit's linter rules; names and messages are theirs). */
export interface CheckWarning {
  readonly rule: string;
  readonly message: string;
  readonly location: SourceLocation;
}

/**
 * A finding of the static pass. `stage` is set for rules BuildKit checks while it dispatches a
 * stage: a build reports those only for the stages its target needs, `--check` for all.
 */
export interface StaticFinding extends CheckWarning {
  readonly stage?: number;
}

export { CHECK_RULES, type CheckConfig } from './check-rules.js';

/** `skip=A,B;experimental=C;error=true`; undefined → defaults. Throws a BuildError when it does not parse. */
export function parseCheckConfig(value: string | undefined, location?: SourceLocation, what = 'check options'): CheckConfig {
  try {
    return parseCheckOptions(value);
  } catch (e) {
    throw new BuildError('DOCKERFILE_SYNTAX', `failed to parse ${what}: ${(e as Error).message}`, {
      ...(location ? { location } : {}),
      hint: 'use e.g. # check=skip=JSONArgsRecommended;experimental=all;error=true',
    });
  }
}

/** Stage names BuildKit reserves (FROM scratch, the build context). */
const RESERVED_STAGE_NAMES = new Set(['scratch', 'context']);
/**
 * BuildKit's patterns for names of secrets (dockerfile2llb/validations.go getSecretsRegex): a
 * name with a secret word as its first or last `_`-separated word is one, unless an allowed
 * word (public, file, version) is also at one of its ends.
 */
const SECRET_NAME = /(?:_|^)(?:apikey|auth|credential|credentials|key|password|pword|passwd|secret|token)(?:_|$)/i;
const NOT_SECRET_NAME = /(?:_|^)(?:public|file|version)(?:_|$)/i;
export const isSecretName = (key: string): boolean => SECRET_NAME.test(key) && !NOT_SECRET_NAME.test(key);
const ONE_PER_STAGE = new Set(['CMD', 'ENTRYPOINT', 'HEALTHCHECK']);
/** ARGs FROM may use without declaring them (BuildKit's automatic platform args). */
const PREDEFINED_FROM_ARGS = new Set(PLATFORM_ARGS);

/**
 * Runs the build checks that need no converted stage over a parsed Dockerfile: casing,
 * deprecated and legacy forms, stage names, relative WORKDIR, repeated CMD/ENTRYPOINT/HEALTHCHECK,
 * secrets in ARG/ENV, EXPOSE forms, FROM arguments and platforms, definition comments. Pure:
 * text in, findings out, in line order; `emptyContinuations` are the parser's lines with empty
 * continuations. A finding is kept when `config`, with the `# check=` comment right above its
 * instruction merged in, runs its rule.
 */
export function runBuildChecks(instructions: readonly Instruction[], emptyContinuations: readonly SourceLocation[], config: CheckConfig = DEFAULT_CHECK_CONFIG): StaticFinding[] {
  const out: StaticFinding[] = [];
  let stageIndex = -1;
  /** A finding on `ins`; `staged`: a rule BuildKit runs when it dispatches the stage. */
  const warn = (rule: string, message: string, ins: Instruction | undefined, location: SourceLocation, staged = false) => {
    if (!ruleEnabled(ins ? withComments(config, ins.comments) : config, rule)) return;
    out.push({ rule, message, location, ...(staged && stageIndex >= 0 ? { stage: stageIndex } : {}) });
  };
  for (const location of emptyContinuations) warn('NoEmptyContinuation', 'Empty continuation line', undefined, location);

  const keywords = instructions.map((i) => i.original.trimStart().split(/\s/, 1)[0] ?? '');
  // BuildKit counts the keywords of the stages (not the ARGs before the first FROM) whose casing
  // is consistent; a tie is upper case.
  const firstFrom = instructions.findIndex((i) => i.kind === 'FROM');
  const inStages = firstFrom < 0 ? [] : keywords.slice(firstFrom);
  const lower = inStages.filter((k) => k === k.toLowerCase() && k !== k.toUpperCase()).length;
  const upper = inStages.filter((k) => k === k.toUpperCase() && k !== k.toLowerCase()).length;
  const majority = lower > upper ? 'lowercase' : 'uppercase';
  instructions.forEach((ins, n) => {
    if (firstFrom < 0 || n < firstFrom) return;
    const kw = keywords[n]!;
    const cased = majority === 'uppercase' ? kw.toUpperCase() : kw.toLowerCase();
    if (kw !== cased) warn('ConsistentInstructionCasing', `Command '${kw}' should match the case of the command majority (${majority})`, undefined, ins.location);
  });

  const metaArgs = new Set<string>();
  /** Global ARG defaults as written (no --build-arg): what InvalidDefaultArgInFrom expands FROM with. */
  const metaDefaults = new Map<string, string>();
  const stageNames = new Set<string>();
  let stage: { workdirSet: boolean; seen: Map<string, Instruction[]> } | undefined;
  /** Named stages so far, for what a stage based on one inherits (the latest of a name). */
  const stagesByName = new Map<string, { workdirSet: boolean }>();
  const closeStage = () => {
    for (const [kind, list] of stage?.seen ?? []) {
      // BuildKit reports an instruction when the next one of its kind is dispatched, under that one's `# check=` comments.
      list.slice(0, -1).forEach((ins, i) => warn('MultipleInstructionsDisallowed', `Multiple ${kind} instructions should not be used in the same stage because only the last one will be used`, list[i + 1], ins.location, true));
    }
  };
  const hygiene = new LayerHygiene();
  for (const [n, ins] of instructions.entries()) {
    const kw = keywords[n]!;
    if (ins.kind === 'FROM') hygiene.reset();
    else if (stage) hygiene.see(ins, (rule, message) => warn(rule, message, ins, ins.location, true));
    switch (ins.kind) {
      case 'FROM': {
        closeStage();
        stageIndex++;
        // A stage based on another one of this file inherits whether a WORKDIR was set there.
        stage = { workdirSet: stagesByName.get(ins.image.toLowerCase())?.workdirSet ?? false, seen: new Map() };
        if (ins.stageName) stagesByName.set(ins.stageName, stage);
        const fields = splitFields(ins.rest.replace(/^\s*(--\S+\s+)*/, ''));
        if (fields.length === 3) {
          const [as, name] = [fields[1]!, fields[2]!];
          const isUpper = (s: string) => s === s.toUpperCase();
          const isLower = (s: string) => s === s.toLowerCase();
          if (name !== name.toLowerCase()) warn('StageNameCasing', `Stage name '${name}' should be lowercase`, ins, ins.location);
          if ((isUpper(kw) && !isUpper(as)) || (isLower(kw) && !isLower(as))) warn('FromAsCasing', `'${as}' and '${kw}' keywords' casing do not match`, ins, ins.location);
        }
        if (ins.stageName) {
          definitionComment('FROM', [ins.stageName], ins, warn);
          if (RESERVED_STAGE_NAMES.has(ins.stageName)) warn('ReservedStageName', `Stage name should not use the same name as reserved stage ${JSON.stringify(ins.stageName)}`, undefined, ins.location);
          if (stageNames.has(ins.stageName)) warn('DuplicateStageName', `Duplicate stage name ${JSON.stringify(ins.stageName)}, stage names should be unique`, undefined, ins.location);
        }
        const refs = referencedVars(ins.image);
        if (refs.length > 0 && refs.every((r) => metaArgs.has(r)) && !stageNames.has(ins.image.toLowerCase())) {
          const image = expandDefaults(ins.image, metaDefaults);
          if (image !== undefined && !stageNames.has(image.toLowerCase()) && image.toLowerCase() !== 'scratch' && !isReference(image)) {
            warn('InvalidDefaultArgInFrom', `Default value for ARG ${ins.image} results in empty or invalid base image name`, undefined, ins.location);
          }
        }
        if (ins.stageName) stageNames.add(ins.stageName);
        for (const name of referencedVars(`${ins.image} ${ins.platform ?? ''}`)) {
          if (metaArgs.has(name) || PREDEFINED_FROM_ARGS.has(name)) continue;
          // Suggestions come from the declared and the predefined ARGs (BuildKit's unusedFromArgsCheckKeys).
          const near = [...metaArgs, ...PREDEFINED_FROM_ARGS].map((a) => [a, editDistance(a, name)] as const).filter(([, d]) => d <= 2).sort((a, b) => a[1] - b[1])[0]?.[0];
          warn('UndefinedArgInFrom', `FROM argument '${name}' is not declared${near ? ` (did you mean ${near}?)` : ''}`, ins, ins.location);
        }
        const platform = ins.platform?.trim();
        // A constant is fine in a stage named for it (`build_amd64`, picked by `FROM build_${TARGETARCH}`).
        if (platform && !platform.includes('$') && !platform.split('/').some((part) => part && ins.stageName?.includes(part.toLowerCase()))) {
          warn('FromPlatformFlagConstDisallowed', `FROM --platform flag should not use constant value ${JSON.stringify(platform)}`, ins, ins.location);
        }
        if (platform === '$TARGETPLATFORM' || platform === '${TARGETPLATFORM}') {
          warn('RedundantTargetPlatform', `Setting platform to predefined ${platform} in FROM is redundant as this is the default behavior`, ins, ins.location);
        }
        break;
      }
      case 'MAINTAINER':
        warn('MaintainerDeprecated', 'Maintainer instruction is deprecated in favor of using label', ins, ins.location);
        break;
      case 'WORKDIR':
        // Only the first WORKDIR of a stage (and the stages based on it) is judged: fixing it fixes the later ones.
        if (stage && !stage.workdirSet && !ins.path.startsWith('/') && !ins.path.startsWith('$')) {
          warn('WorkdirRelativePath', `Relative workdir ${JSON.stringify(ins.path)} can have unexpected results if the base image changes`, ins, ins.location, true);
        }
        if (stage) stage.workdirSet = true;
        break;
      case 'ENV':
      case 'LABEL': {
        // The legacy form is `KEY value with spaces`: its first word has no '='.
        const first = splitFields(ins.rest)[0] ?? '';
        if (!first.includes('=')) warn('LegacyKeyValueFormat', `"${ins.kind} key=value" should be used instead of legacy "${ins.kind} key value" format`, ins, ins.location, true);
        if (ins.kind === 'ENV') for (const p of ins.pairs) if (isSecretName(p.key)) warn('SecretsUsedInArgOrEnv', `Do not use ARG or ENV instructions for sensitive data (ENV ${JSON.stringify(p.key)})`, ins, ins.location, true);
        break;
      }
      case 'ARG':
        definitionComment('ARG', ins.args.map((a) => a.key), ins, warn);
        if (!stage) {
          for (const a of ins.args) {
            metaArgs.add(a.key);
            const v = a.value === undefined ? '' : expandDefaults(a.value, metaDefaults);
            if (v !== undefined) metaDefaults.set(a.key, v);
          }
          // BuildKit checks names of secrets when it dispatches a stage's ARG, not the global ones.
          break;
        }
        for (const a of ins.args) if (isSecretName(a.key)) warn('SecretsUsedInArgOrEnv', `Do not use ARG or ENV instructions for sensitive data (ARG ${JSON.stringify(a.key)})`, ins, ins.location, true);
        break;
      case 'EXPOSE':
        for (const p of ins.ports) {
          const { proto, mapped } = exposeParts(p);
          if (proto !== proto.toLowerCase()) warn('ExposeProtoCasing', `Defined protocol '${p}' in EXPOSE instruction should be lowercase`, ins, ins.location, true);
          if (mapped) warn('ExposeInvalidFormat', `EXPOSE instruction should not define an IP address or host-port mapping, found '${p}'`, ins, ins.location, true);
        }
        break;
      default:
        break;
    }
    if (stage && ONE_PER_STAGE.has(ins.kind)) stage.seen.set(ins.kind, [...(stage.seen.get(ins.kind) ?? []), ins]);
  }
  closeStage();
  return out.sort((a, b) => a.location.line - b.location.line);
}

/**
 * InvalidDefinitionDescription (experimental): the last comment line right above a named FROM or
 * an ARG, if any, should start with the name it describes (BuildKit instructions/parse.go).
 */
function definitionComment(
  kind: 'FROM' | 'ARG',
  names: readonly string[],
  ins: Instruction,
  warn: (rule: string, message: string, ins: Instruction, location: SourceLocation) => void,
): void {
  const last = ins.comments[ins.comments.length - 1];
  if (last === undefined || names.length === 0 || names.includes(last.split(' ')[0]!)) return;
  const example = names.length > 1 ? '<arg_key>' : names[0]!;
  warn('InvalidDefinitionDescription', `Comment for ${kind} should follow the format: \`# ${example} <description>\``, ins, ins.location);
}

/**
 * An EXPOSE word as BuildKit's port parser splits it (`[ip:][hostPort:]containerPort[/proto]`,
 * split at every `:`): its protocol as written, and whether it names an IP address or a host port.
 */
function exposeParts(raw: string): { proto: string; mapped: boolean } {
  const container = raw.slice(raw.lastIndexOf(':') + 1);
  return { proto: container.split('/')[1] ?? '', mapped: raw.includes(':') };
}

/** `word` expanded with the global ARG defaults; undefined when it does not expand (a lexer error). */
function expandDefaults(word: string, defaults: ReadonlyMap<string, string>): string | undefined {
  try {
    return new ShellLexer().processWord(word, { get: (k) => defaults.get(k) });
  } catch {
    return undefined;
  }
}

function isReference(s: string): boolean {
  try {
    parseReference(s);
    return true;
  } catch {
    return false;
  }
}

/** Names of the `$NAME` and `${NAME…}` references in a word (escaped `\\$` skipped). */
function referencedVars(word: string): string[] {
  return [...word.matchAll(/(?<!\\)\$(?:\{([A-Za-z_][A-Za-z0-9_]*)|([A-Za-z_][A-Za-z0-9_]*))/g)].map((m) => m[1] ?? m[2]!);
}

/**
 * With `error=true`: one build error for the findings, located at the first. The findings are
 * reported as warnings beside it, as BuildKit does.
 */
export function checksAsError(found: readonly CheckWarning[]): BuildError {
  const first = [...found].sort((a, b) => a.location.line - b.location.line)[0]!;
  return new BuildError('DOCKERFILE_SYNTAX', `lint violation found for rules: ${[...new Set(found.map((w) => w.rule))].join(', ')}`, {
    location: first.location,
    hint: 'the Dockerfile sets # check=error=true: fix the warnings above or skip their rules with # check=skip=RULE',
  });
}

/** The build-arg that configures checks as `# check=` does, and wins over it (BuildKit's). */
export const CHECK_BUILD_ARG = 'BUILDKIT_DOCKERFILE_CHECK';

/** The check configuration of a build: the BUILDKIT_DOCKERFILE_CHECK build-arg, else `# check=` in `text`. */
export function checkConfigOf(text: string, buildArgs: Readonly<Record<string, string>>): CheckConfig {
  const arg = buildArgs[CHECK_BUILD_ARG];
  if (arg !== undefined) return parseCheckConfig(arg, undefined, CHECK_BUILD_ARG);
  return parseCheckConfig(parseDirective('check', text)?.cmdline);
}

/**
 * The static checks of a parsed Dockerfile that its configuration keeps (`# check=` in `text`,
 * or the BUILDKIT_DOCKERFILE_CHECK build-arg), with that configuration.
 */
export function dockerfileChecks(
  text: string,
  file: string,
  instructions: readonly Instruction[],
  parseWarnings: readonly { readonly line: number }[],
  buildArgs: Readonly<Record<string, string>>,
): { readonly found: StaticFinding[]; readonly config: CheckConfig } {
  const config = checkConfigOf(text, buildArgs);
  return { found: runBuildChecks(instructions, parseWarnings.map((w) => ({ file, line: w.line })), config), config };
}

import { BuildError, type SourceLocation } from '../errors.js';
import { parseDirective } from './directives.js';
import type { Instruction } from './instructions.js';
import { editDistance } from './parse.js';
import { ShellLexer } from './shell-lexer.js';
import { PLATFORM_ARGS } from './stage-state.js';
import { parseReference } from '../oci/reference.js';
import { splitFields } from './words.js';

/** One finding of a build check (BuildKit's linter rules; names and messages are theirs). */
export interface CheckWarning {
  readonly rule: string;
  readonly message: string;
  readonly location: SourceLocation;
}

/** What `# check=` (or the BUILDKIT_DOCKERFILE_CHECK build-arg) asks for. */
export interface CheckConfig {
  /** Rule names to leave out; `all` for every rule. */
  readonly skip: ReadonlySet<string>;
  /** A finding fails the build. */
  readonly error: boolean;
}

/** Rules this frontend checks, with BuildKit's descriptions. */
export const CHECK_RULES: Readonly<Record<string, string>> = {
  StageNameCasing: 'Stage names should be lowercase',
  FromAsCasing: "The 'as' keyword should match the case of the 'from' keyword",
  NoEmptyContinuation: 'Empty continuation lines will become errors in a future release',
  ConsistentInstructionCasing: 'All commands within the Dockerfile should use the same casing (either upper or lower)',
  ReservedStageName: 'Reserved words should not be used as stage names',
  JSONArgsRecommended: 'JSON arguments recommended for ENTRYPOINT/CMD to prevent unintended behavior related to OS signals',
  MaintainerDeprecated: 'The MAINTAINER instruction is deprecated, use a label instead to define an image author',
  WorkdirRelativePath: 'Relative workdir without an absolute workdir declared within the build can have unexpected results if the base image changes',
  MultipleInstructionsDisallowed: 'Multiple instructions of the same type should not be used in the same stage',
  LegacyKeyValueFormat: 'Legacy key/value format with whitespace separator should not be used',
  RedundantTargetPlatform: 'Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior',
  SecretsUsedInArgOrEnv: 'Sensitive data should not be used in the ARG or ENV commands',
  ExposeProtoCasing: 'Protocol in EXPOSE instruction should be lowercase',
  UndefinedArgInFrom: 'FROM command must use declared ARGs',
  UndefinedVar: 'Variables should be defined before their use',
  InvalidDefaultArgInFrom: 'Default value for global ARG results in an empty or invalid base image name',
  FromPlatformFlagConstDisallowed: 'FROM --platform flag should not use a constant value',
};

/** Parses `skip=A,B;error=true` (already validated by the directive check); undefined → defaults. */
export function parseCheckConfig(value: string | undefined): CheckConfig {
  const skip = new Set<string>();
  let error = false;
  for (const part of (value ?? '').split(';').map((p) => p.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    const key = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase();
    const v = eq < 0 ? '' : part.slice(eq + 1).trim();
    if (key === 'skip') for (const r of v.split(',').map((x) => x.trim()).filter(Boolean)) skip.add(r);
    else if (key === 'error') error = v.toLowerCase() === 'true';
  }
  return { skip, error };
}

/** Stage names BuildKit reserves (FROM scratch, the build context). */
const RESERVED_STAGE_NAMES = new Set(['scratch', 'context']);
/** BuildKit's pattern for names of secrets: a whole `_`-separated word of the key. */
const SECRET_NAME = /(?:^|_)(?:apikey|auth|credential|credentials|key|password|pword|passwd|secret|token)(?:_|$)/i;
const ONE_PER_STAGE = new Set(['CMD', 'ENTRYPOINT', 'HEALTHCHECK']);
/** ARGs FROM may use without declaring them (BuildKit's automatic platform args). */
const PREDEFINED_FROM_ARGS = new Set(PLATFORM_ARGS);

/**
 * Runs the build checks over a parsed Dockerfile: casing, deprecated and legacy forms, shell-form
 * CMD/ENTRYPOINT, relative WORKDIR, repeated CMD/ENTRYPOINT/HEALTHCHECK, secrets in ARG/ENV,
 * EXPOSE protocol casing, `FROM --platform=$TARGETPLATFORM`. Pure: text in, findings out, in
 * line order; `emptyContinuations` are the parser's lines with empty continuations.
 */
export function runBuildChecks(instructions: readonly Instruction[], emptyContinuations: readonly SourceLocation[]): CheckWarning[] {
  const out: CheckWarning[] = [];
  const warn = (rule: string, message: string, location: SourceLocation) => out.push({ rule, message, location });
  for (const location of emptyContinuations) warn('NoEmptyContinuation', 'Empty continuation line', location);

  const keywords = instructions.map((i) => i.original.trimStart().split(/\s/, 1)[0] ?? '');
  const upper = keywords.filter((k) => k === k.toUpperCase()).length;
  const majority = upper >= keywords.length - upper ? 'uppercase' : 'lowercase';
  instructions.forEach((ins, n) => {
    const kw = keywords[n]!;
    const cased = majority === 'uppercase' ? kw.toUpperCase() : kw.toLowerCase();
    if (kw !== cased) warn('ConsistentInstructionCasing', `Command '${kw}' should match the case of the command majority (${majority})`, ins.location);
  });

  const metaArgs = new Set<string>();
  /** Global ARG defaults as written (no --build-arg): what InvalidDefaultArgInFrom expands FROM with. */
  const metaDefaults = new Map<string, string>();
  const stageNames = new Set<string>();
  let stage: { absoluteWorkdir: boolean; seen: Map<string, Instruction[]> } | undefined;
  const closeStage = () => {
    for (const [kind, list] of stage?.seen ?? []) {
      for (const ins of list.slice(0, -1)) warn('MultipleInstructionsDisallowed', `Multiple ${kind} instructions should not be used in the same stage because only the last one will be used`, ins.location);
    }
  };
  for (const [n, ins] of instructions.entries()) {
    const kw = keywords[n]!;
    switch (ins.kind) {
      case 'FROM': {
        closeStage();
        stage = { absoluteWorkdir: false, seen: new Map() };
        const fields = splitFields(ins.rest.replace(/^\s*(--\S+\s+)*/, ''));
        if (fields.length === 3) {
          const [as, name] = [fields[1]!, fields[2]!];
          const isUpper = (s: string) => s === s.toUpperCase();
          const isLower = (s: string) => s === s.toLowerCase();
          if ((isUpper(kw) && !isUpper(as)) || (isLower(kw) && !isLower(as))) warn('FromAsCasing', `'${as}' and '${kw}' keywords' casing do not match`, ins.location);
          if (name !== name.toLowerCase()) warn('StageNameCasing', `Stage name '${name}' should be lowercase`, ins.location);
          if (RESERVED_STAGE_NAMES.has(name.toLowerCase())) warn('ReservedStageName', `Stage name should not use the same name as reserved stage "${name.toLowerCase()}"`, ins.location);
        }
        const refs = referencedVars(ins.image);
        if (refs.length > 0 && refs.every((r) => metaArgs.has(r)) && !stageNames.has(ins.image.toLowerCase())) {
          const image = expandDefaults(ins.image, metaDefaults);
          if (image !== undefined && !stageNames.has(image.toLowerCase()) && image.toLowerCase() !== 'scratch' && !isReference(image)) {
            warn('InvalidDefaultArgInFrom', `Default value for ARG ${ins.image} results in empty or invalid base image name`, ins.location);
          }
        }
        if (ins.stageName) stageNames.add(ins.stageName);
        for (const name of referencedVars(`${ins.image} ${ins.platform ?? ''}`)) {
          if (metaArgs.has(name) || PREDEFINED_FROM_ARGS.has(name)) continue;
          const near = [...metaArgs].map((a) => [a, editDistance(a, name)] as const).filter(([, d]) => d <= 2).sort((a, b) => a[1] - b[1])[0]?.[0];
          warn('UndefinedArgInFrom', `FROM argument '${name}' is not declared${near ? ` (did you mean ${near}?)` : ''}`, ins.location);
        }
        const platform = ins.platform?.trim();
        // A constant is fine in a stage named for it (`build_amd64`, picked by `FROM build_${TARGETARCH}`).
        if (platform && !platform.includes('$') && !platform.split('/').some((part) => part && ins.stageName?.includes(part.toLowerCase()))) {
          warn('FromPlatformFlagConstDisallowed', `FROM --platform flag should not use constant value ${JSON.stringify(platform)}`, ins.location);
        }
        if (platform === '$TARGETPLATFORM' || platform === '${TARGETPLATFORM}') {
          warn('RedundantTargetPlatform', `Setting platform to predefined ${platform} in FROM is redundant as this is the default behavior`, ins.location);
        }
        break;
      }
      case 'CMD':
      case 'ENTRYPOINT':
        if (ins.cmd.prependShell) warn('JSONArgsRecommended', `JSON arguments recommended for ${ins.kind} to prevent unintended behavior related to OS signals`, ins.location);
        break;
      case 'MAINTAINER':
        warn('MaintainerDeprecated', 'Maintainer instruction is deprecated in favor of using label', ins.location);
        break;
      case 'WORKDIR':
        if (ins.path.startsWith('/') || ins.path.startsWith('$')) {
          if (stage) stage.absoluteWorkdir = true;
        } else if (stage && !stage.absoluteWorkdir) {
          warn('WorkdirRelativePath', `Relative workdir ${JSON.stringify(ins.path)} can have unexpected results if the base image changes`, ins.location);
        }
        break;
      case 'ENV':
      case 'LABEL': {
        // The legacy form is `KEY value with spaces`: its first word has no '='.
        const first = splitFields(ins.rest)[0] ?? '';
        if (!first.includes('=')) warn('LegacyKeyValueFormat', `"${ins.kind} key=value" should be used instead of legacy "${ins.kind} key value" format`, ins.location);
        if (ins.kind === 'ENV') for (const p of ins.pairs) if (SECRET_NAME.test(p.key)) warn('SecretsUsedInArgOrEnv', `Do not use ARG or ENV instructions for sensitive data (ENV ${JSON.stringify(p.key)})`, ins.location);
        break;
      }
      case 'ARG':
        if (!stage) {
          for (const a of ins.args) {
            metaArgs.add(a.key);
            const v = a.value === undefined ? '' : expandDefaults(a.value, metaDefaults);
            if (v !== undefined) metaDefaults.set(a.key, v);
          }
        }
        for (const a of ins.args) if (SECRET_NAME.test(a.key)) warn('SecretsUsedInArgOrEnv', `Do not use ARG or ENV instructions for sensitive data (ARG ${JSON.stringify(a.key)})`, ins.location);
        break;
      case 'EXPOSE':
        for (const p of ins.ports) {
          const proto = p.split('/')[1];
          if (proto && proto !== proto.toLowerCase()) warn('ExposeProtoCasing', `Defined protocol '${p}' in EXPOSE instruction should be lowercase`, ins.location);
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

/** The findings `config` keeps (`skip=all` keeps none). */
export function selectChecks(found: readonly CheckWarning[], config: CheckConfig): CheckWarning[] {
  if (config.skip.has('all')) return [];
  return found.filter((w) => !config.skip.has(w.rule));
}

/** With `error=true`: the findings as one build error located at the first. */
export function checksAsError(found: readonly CheckWarning[]): BuildError {
  const lines = found.map((w) => `${w.rule}: ${w.message} (line ${w.location.line})`);
  return new BuildError('DOCKERFILE_SYNTAX', `lint violation found for rules: ${[...new Set(found.map((w) => w.rule))].join(', ')}`, {
    location: found[0]!.location,
    hint: [...lines, 'the Dockerfile sets # check=error=true; fix these or skip the rules with # check=skip=RULE'].join('\n'),
  });
}

/** The build-arg that configures checks as `# check=` does, and wins over it (BuildKit's). */
export const CHECK_BUILD_ARG = 'BUILDKIT_DOCKERFILE_CHECK';

/**
 * The checks of a parsed Dockerfile that its configuration keeps: `# check=` in `text`, or the
 * BUILDKIT_DOCKERFILE_CHECK build-arg. With `error=true` and findings, `error` is set.
 */
export function dockerfileChecks(
  text: string,
  file: string,
  instructions: readonly Instruction[],
  parseWarnings: readonly { readonly line: number }[],
  buildArgs: Readonly<Record<string, string>>,
): { readonly found: CheckWarning[]; readonly config: CheckConfig; readonly error?: BuildError } {
  const config = parseCheckConfig(buildArgs[CHECK_BUILD_ARG] ?? parseDirective('check', text)?.cmdline);
  const found = selectChecks(runBuildChecks(instructions, parseWarnings.map((w) => ({ file, line: w.line }))), config);
  return { found, config, ...(config.error && found.length > 0 ? { error: checksAsError(found) } : {}) };
}

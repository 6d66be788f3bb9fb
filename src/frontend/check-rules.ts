import { DirectiveParser } from './directives.js';
import { LAYER_HYGIENE_RULES } from './layer-hygiene-checks.js';

/**
 * BuildKit's build-check rules (frontend/dockerfile/linter/ruleset.go) and what `# check=`
 * selects of them (linter.go: ParseLintOptions, Linter.Run, WithMergedConfigFromComments).
 */

export interface CheckRule {
  readonly description: string;
  /** BuildKit gives InvalidBaseImagePlatform none. */
  readonly url?: string;
  /** Off unless `experimental=` names it (or `all`); `skip=` does not apply to it. */
  readonly experimental?: boolean;
}

const doc = (slug: string) => `https://docs.docker.com/go/dockerfile/rule/${slug}/`;

/** Every rule, with BuildKit's description and documentation URL. */
export const CHECK_RULES: Readonly<Record<string, CheckRule>> = {
  StageNameCasing: { description: 'Stage names should be lowercase', url: doc('stage-name-casing') },
  FromAsCasing: { description: "The 'as' keyword should match the case of the 'from' keyword", url: doc('from-as-casing') },
  NoEmptyContinuation: { description: 'Empty continuation lines will become errors in a future release', url: doc('no-empty-continuation') },
  ConsistentInstructionCasing: { description: 'All commands within the Dockerfile should use the same casing (either upper or lower)', url: doc('consistent-instruction-casing') },
  DuplicateStageName: { description: 'Stage names should be unique', url: doc('duplicate-stage-name') },
  ReservedStageName: { description: 'Reserved words should not be used as stage names', url: doc('reserved-stage-name') },
  JSONArgsRecommended: { description: 'JSON arguments recommended for ENTRYPOINT/CMD to prevent unintended behavior related to OS signals', url: doc('json-args-recommended') },
  MaintainerDeprecated: { description: 'The MAINTAINER instruction is deprecated, use a label instead to define an image author', url: doc('maintainer-deprecated') },
  UndefinedArgInFrom: { description: 'FROM command must use declared ARGs', url: doc('undefined-arg-in-from') },
  WorkdirRelativePath: { description: 'Relative workdir without an absolute workdir declared within the build can have unexpected results if the base image changes', url: doc('workdir-relative-path') },
  UndefinedVar: { description: 'Variables should be defined before their use', url: doc('undefined-var') },
  MultipleInstructionsDisallowed: { description: 'Multiple instructions of the same type should not be used in the same stage', url: doc('multiple-instructions-disallowed') },
  LegacyKeyValueFormat: { description: 'Legacy key/value format with whitespace separator should not be used', url: doc('legacy-key-value-format') },
  InvalidBaseImagePlatform: { description: 'Base image platform does not match expected target platform' },
  RedundantTargetPlatform: { description: 'Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior', url: doc('redundant-target-platform') },
  SecretsUsedInArgOrEnv: { description: 'Sensitive data should not be used in the ARG or ENV commands', url: doc('secrets-used-in-arg-or-env') },
  InvalidDefaultArgInFrom: { description: 'Default value for global ARG results in an empty or invalid base image name', url: doc('invalid-default-arg-in-from') },
  FromPlatformFlagConstDisallowed: { description: 'FROM --platform flag should not use a constant value', url: doc('from-platform-flag-const-disallowed') },
  CopyIgnoredFile: { description: 'Attempting to Copy file that is excluded by .dockerignore', url: doc('copy-ignored-file') },
  InvalidDefinitionDescription: {
    description: 'Comment for build stage or argument should follow the format: `# <arg/stage name> <description>`. If this is not intended to be a description comment, add an empty line or comment between the instruction and the comment.',
    url: doc('invalid-definition-description'),
    experimental: true,
  },
  ExposeProtoCasing: { description: 'Protocol in EXPOSE instruction should be lowercase', url: doc('expose-proto-casing') },
  ExposeInvalidFormat: { description: 'IP address and host-port mapping should not be used in EXPOSE instruction. This will become an error in a future release', url: doc('expose-invalid-format') },
  // tsbuild's own, not BuildKit's (docs/analyze.md).
  ...LAYER_HYGIENE_RULES,
};

/** What `# check=` (or the BUILDKIT_DOCKERFILE_CHECK build-arg) asks for. */
export interface CheckConfig {
  /** Rule names to leave out; `all` for every (non-experimental) rule. */
  readonly skip: ReadonlySet<string>;
  /** Experimental rules to run; `all` for every one. */
  readonly experimental: ReadonlySet<string>;
  /** A finding fails the build. */
  readonly error: boolean;
}

export const DEFAULT_CHECK_CONFIG: CheckConfig = { skip: new Set(), experimental: new Set(), error: false };

/**
 * Parses `skip=A,B;experimental=C;error=true` as BuildKit's ParseLintOptions: every part is
 * KEY=VALUE, keys are skip, experimental and error. Throws an Error naming the bad part.
 */
export function parseCheckOptions(value: string | undefined): CheckConfig {
  const text = (value ?? '').trim();
  if (text === '') return DEFAULT_CHECK_CONFIG;
  const skip = new Set<string>();
  const experimental = new Set<string>();
  let error = false;
  // BuildKit splits into at most 3 parts (SplitN(…, ";", 3)).
  const parts = text.split(';');
  for (const part of [...parts.slice(0, 2), ...(parts.length > 2 ? [parts.slice(2).join(';')] : [])]) {
    const eq = part.indexOf('=');
    if (eq < 0) throw new Error(`invalid check option ${JSON.stringify(part)}`);
    const key = part.slice(0, eq).trim();
    const v = part.slice(eq + 1).trim();
    if (key === 'skip' || key === 'experimental') {
      for (const r of v.split(',')) (key === 'skip' ? skip : experimental).add(r.trim());
    } else if (key === 'error') {
      const b = parseGoBool(v);
      if (b === undefined) throw new Error(`failed to parse check option ${JSON.stringify(part)}: invalid syntax`);
      error = b;
    } else throw new Error(`invalid check option ${JSON.stringify(key)}`);
  }
  return { skip, experimental, error };
}

/** Go's strconv.ParseBool. */
function parseGoBool(s: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(s)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(s)) return false;
  return undefined;
}

/** Whether `config` runs `rule`: experimental rules only when named, others unless skipped. */
export function ruleEnabled(config: CheckConfig, rule: string): boolean {
  if (CHECK_RULES[rule]?.experimental) return config.experimental.has('all') || config.experimental.has(rule);
  return !config.skip.has('all') && !config.skip.has(rule);
}

/**
 * The config for one instruction: a `# check=…` comment directly above it adds its skip and
 * experimental rules to the file's, for that instruction only (BuildKit 0.15+,
 * WithMergedConfigFromComments). The first such comment counts; words after the options
 * (`# check=skip=X // why`) are ignored, and so is a comment that does not parse.
 */
export function withComments(config: CheckConfig, comments: readonly string[]): CheckConfig {
  for (const comment of comments) {
    // BuildKit parses the comment's text with an empty comment prefix.
    const d = new DirectiveParser('').parseLine(comment);
    if (!d || d.name !== 'check') continue;
    let local: CheckConfig;
    try {
      local = parseCheckOptions(d.value.split(' ', 1)[0]);
    } catch {
      return config;
    }
    return {
      skip: new Set([...config.skip, ...local.skip]),
      experimental: new Set([...config.experimental, ...local.experimental]),
      error: config.error,
    };
  }
  return config;
}

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { CHECK_RULES, dockerfileChecks, type CheckWarning } from '../../../src/frontend/build-checks.js';
import { parseInstruction } from '../../../src/frontend/instructions.js';
import { parseDockerfile } from '../../../src/frontend/parse.js';

const test = suite('frontend/build-checks');

/** The checks a parse alone finds (UndefinedVar needs the converted stages: compile.test.ts). */
function lintDockerfile(text: string, file: string, buildArgs: Readonly<Record<string, string>>): CheckWarning[] {
  const parsed = parseDockerfile(text, file);
  if (parsed.errors.length > 0) throw parsed.errors[0];
  const instructions = parsed.instructions.map((raw) => parseInstruction(raw, parsed.escapeToken));
  return [...dockerfileChecks(text, file, instructions, parsed.warnings, buildArgs).found];
}

/** `rule@line` of every finding. */
const lint = (text: string, buildArgs: Record<string, string> = {}) => lintDockerfile(text, '/x/Dockerfile', buildArgs).map((w) => `${w.rule}@${w.location.line}`);

const cases: [string, string, string[]][] = [
  ['clean', 'FROM busybox AS build\nWORKDIR /app\nWORKDIR sub\nENV A=1 B=2\nLABEL a=b\nEXPOSE 80/tcp\nCMD ["sh"]\nENTRYPOINT ["x"]\n', []],
  ['FromAsCasing and StageNameCasing', 'FROM busybox as Build\nfrom busybox AS x\n', ['FromAsCasing@1', 'StageNameCasing@1', 'ConsistentInstructionCasing@2', 'FromAsCasing@2']],
  ['ConsistentInstructionCasing follows the majority', 'from busybox\nrun true\nRUN false\n', ['ConsistentInstructionCasing@3']],
  ['ReservedStageName', 'FROM busybox AS scratch\n', ['ReservedStageName@1']],
  ['MaintainerDeprecated', 'FROM busybox\nMAINTAINER me\n', ['MaintainerDeprecated@2']],
  ['WorkdirRelativePath only before an absolute WORKDIR in the stage', 'FROM busybox\nWORKDIR rel\nWORKDIR /abs\nWORKDIR rel2\nFROM busybox\nWORKDIR again\n', ['WorkdirRelativePath@2', 'WorkdirRelativePath@6']],
  ['MultipleInstructionsDisallowed per stage', 'FROM busybox\nCMD ["a"]\nCMD ["b"]\nFROM busybox\nCMD ["c"]\n', ['MultipleInstructionsDisallowed@2']],
  ['LegacyKeyValueFormat', 'FROM busybox\nENV A 1\nLABEL b two words\nENV C=3\n', ['LegacyKeyValueFormat@2', 'LegacyKeyValueFormat@3']],
  ['RedundantTargetPlatform', 'FROM --platform=$TARGETPLATFORM busybox\nFROM --platform=$BUILDPLATFORM busybox\n', ['RedundantTargetPlatform@1']],
  ['SecretsUsedInArgOrEnv: whole words of the name only', 'FROM busybox\nARG GITHUB_TOKEN\nENV DB_PASSWORD=x\nARG TOKENIZER_MODE\nENV KEYBOARD=us\n', ['SecretsUsedInArgOrEnv@2', 'SecretsUsedInArgOrEnv@3']],
  ['SecretsUsedInArgOrEnv: public, file and version are allowed words; global ARGs are not checked', 'ARG API_TOKEN\nFROM busybox\nARG PUBLIC_KEY\nENV password_file=x\nARG AUTH_MODULE_VERSION\nARG public_token\n', []],
  ['ExposeInvalidFormat', 'FROM busybox\nEXPOSE 127.0.0.1:80:80 [::1]:8080:8080 5000:5000 8000 [::1]:90\n', ['ExposeInvalidFormat@2', 'ExposeInvalidFormat@2', 'ExposeInvalidFormat@2', 'ExposeInvalidFormat@2']],
  ['MultipleInstructionsDisallowed: a # check= comment above the later instruction skips it', 'FROM busybox\nCMD ["a"]\n# check=skip=MultipleInstructionsDisallowed\nCMD ["b"]\n', []],
  ['DuplicateStageName', 'FROM busybox AS b\nFROM busybox AS b\n', ['DuplicateStageName@2']],
  ['a # check= comment skips a rule for the instruction below it only', 'FROM busybox\n# check=skip=MaintainerDeprecated // why\nMAINTAINER me\nMAINTAINER you\n', ['MaintainerDeprecated@4']],
  ['ExposeProtoCasing', 'FROM busybox\nEXPOSE 80/TCP 443/tcp\n', ['ExposeProtoCasing@2']],
  ['UndefinedArgInFrom, with a suggestion; platform args are predefined', 'ARG VERSION=1\nFROM busybox:${VERSOIN}\nFROM --platform=$BUILDPLATFORM busybox:$VERSION\nFROM $OTHER\n', ['UndefinedArgInFrom@2', 'UndefinedArgInFrom@4']],
  ['InvalidDefaultArgInFrom: only when the defaults make no valid name', 'ARG TAG\nARG IMG=busybox\nARG GOOD=1.36\nFROM busybox:${TAG}\nFROM ${IMG}:${GOOD}\nFROM ${IMG}\n', ['InvalidDefaultArgInFrom@4']],
  ['FromPlatformFlagConstDisallowed, unless the stage is named for the platform', 'FROM --platform=linux/amd64 busybox AS base\nFROM --platform=linux/arm64 busybox AS build_arm64\nFROM --platform=$BUILDPLATFORM busybox\n', ['FromPlatformFlagConstDisallowed@1']],
  ['NoEmptyContinuation', 'FROM busybox\nRUN echo a \\\n\n  b\n', ['NoEmptyContinuation@4']],
];
for (const [name, text, want] of cases) {
  test(name, () => {
    assert.equal(lint(text).sort(), [...want].sort());
    for (const w of want) assert.ok(w.split('@')[0]! in CHECK_RULES, `${w} is a known rule`);
  });
}

test('# check=skip= and the BUILDKIT_DOCKERFILE_CHECK build-arg select rules; skip=all none', () => {
  const text = 'FROM busybox\nMAINTAINER me\nENV A 1\n';
  assert.equal(lint(`# check=skip=MaintainerDeprecated\n${text}`), ['LegacyKeyValueFormat@4']);
  assert.equal(lint(`# check=skip=all\n${text}`), []);
  assert.equal(lint(`# check=skip=all\n${text}`, { BUILDKIT_DOCKERFILE_CHECK: 'skip=LegacyKeyValueFormat' }), ['MaintainerDeprecated@3'], 'the build-arg wins');
});

test('messages are BuildKit\'s', () => {
  const [w] = lintDockerfile('FROM busybox\nENV A 1\n', 'Dockerfile', {});
  assert.is(w!.message, '"ENV key=value" should be used instead of legacy "ENV key value" format');
  const [u] = lintDockerfile('ARG VERSION=1\nFROM busybox:${VERSOIN}\n', 'Dockerfile', {});
  assert.is(u!.message, "FROM argument 'VERSOIN' is not declared (did you mean VERSION?)");
});

test.run();

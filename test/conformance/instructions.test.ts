/**
 * BuildKit instruction-level conformance (conformance README §7.1, §7.3):
 * frontend/instruction-cases.json (typed instructions from the AST, heredoc sources and RUN
 * files, doc comments) and frontend/unit-cases.json (handleJSONArgs, parseDevice, EXPOSE port
 * specs, env list helpers, instruction flag parsing).
 */
import { suite } from 'uvu';
import { readFileSync } from 'node:fs';
import { parseAst } from '../../src/frontend/ast.js';
import { parseDevice } from '../../src/frontend/device.js';
import { parsePortSpec } from '../../src/frontend/expose.js';
import { parseFlags, type FlagSpec } from '../../src/frontend/flags.js';
import { docComment, handleJsonArgs, parseInstruction, type Instruction } from '../../src/frontend/instructions.js';
import { parseDockerfile } from '../../src/frontend/parse.js';
import { addEnv, parseKeyValue } from '../../src/frontend/stage-state.js';
import { CONFORMANCE_DIR, diff, runSet } from './report.js';

const load = (name: string): any => JSON.parse(readFileSync(`${CONFORMANCE_DIR}/frontend/${name}`, 'utf8'));
const test = suite('instruction-conformance');

/** Case id → reason it cannot pass yet. Keep empty unless a gap is accepted. */
const KNOWN_FAILURES = new Map<string, string>([]);

/** AST child 0 as a typed instruction (later lines are ignored, as upstream does). */
function firstInstruction(text: string): Instruction {
  const line = parseAst(text).ast.children[0]!.startLine;
  const parsed = parseDockerfile(text, 'Dockerfile');
  const err = parsed.errors.find((e) => e.location?.line === line);
  if (err) throw err;
  const raw = parsed.instructions.find((i) => i.location.line === line)!;
  return parseInstruction(raw, parsed.escapeToken);
}

function wholeFile(text: string): unknown {
  const parsed = parseDockerfile(text, 'Dockerfile');
  if (parsed.errors.length > 0) throw parsed.errors[0]!;
  const ins = parsed.instructions.map((r) => parseInstruction(r, parsed.escapeToken));
  const argView = (i: Extract<Instruction, { kind: 'ARG' }>): unknown => ({ kind: 'ARG', args: i.args.map((a) => ({ key: a.key, docComment: docComment(i.comments, a.key) })) });
  const stages: { docComment: string; commands: unknown[] }[] = [];
  const metaArgs: unknown[] = [];
  for (const i of ins) {
    if (i.kind === 'FROM') stages.push({ docComment: docComment(i.comments, i.stageName ?? ''), commands: [] });
    else if (stages.length === 0 && i.kind === 'ARG') metaArgs.push(...(argView(i) as { args: unknown[] }).args);
    else if (i.kind === 'ARG') stages[stages.length - 1]!.commands.push(argView(i));
  }
  return { stages, metaArgs };
}

function checkInstruction(c: any): string | undefined {
  const e = c.expect;
  let got: any;
  try {
    got = c.scope === 'wholeFile' ? wholeFile(c.dockerfile) : firstInstruction(c.dockerfile);
  } catch (err) {
    const msg = (err as Error).message;
    if (e.errorEquals !== undefined) return diff(msg, e.errorEquals);
    if (e.errorContains !== undefined) return msg.includes(e.errorContains) ? undefined : `error ${JSON.stringify(msg)} lacks ${JSON.stringify(e.errorContains)}`;
    return `threw ${msg}`;
  }
  if (e.errorEquals !== undefined || e.errorContains !== undefined) return `no error (want ${e.errorEquals ?? e.errorContains})`;
  if (e.copy) {
    if (got.kind !== 'COPY' && got.kind !== 'ADD') return `got ${got.kind}`;
    return diff({ destPath: got.dest, sourcePaths: got.sources, sourceContents: got.sourceContents.map((s: any) => ({ path: s.path, data: s.data, expand: s.expand })) }, e.copy);
  }
  if (e.run) {
    if (got.kind !== 'RUN') return `got ${got.kind}`;
    const view: Record<string, unknown> = {};
    if ('prependShell' in e.run) view.prependShell = got.cmd.prependShell;
    if ('cmdLine' in e.run) view.cmdLine = got.cmd.args;
    if ('files' in e.run) view.files = got.files;
    if ('flagsUsed' in e.run) view.flagsUsed = got.flagsUsed;
    return diff(view, e.run);
  }
  if (e.healthcheck) return got.kind === 'HEALTHCHECK' ? diff({ test: got.test }, e.healthcheck) : `got ${got.kind}`;
  if (e.stages || e.metaArgs) return diff(got, { stages: e.stages, metaArgs: e.metaArgs });
  return 'case has no checkable expectation';
}

test('instruction-cases.json', () => {
  runSet('instruction-cases', load('instruction-cases.json') as any[], (c) => c.id, checkInstruction, KNOWN_FAILURES);
});

const units = load('unit-cases.json');

test('unit-cases: handleJSONArgs', () => {
  runSet('handleJSONArgs', units.handleJSONArgs as any[], (c) => `handleJSONArgs/${c.name}`, (c) => diff(handleJsonArgs(c.args, c.json), c.expected), KNOWN_FAILURES);
});

test('unit-cases: parseDevice', () => {
  runSet('parseDevice', units.parseDevice as any[], (c) => `parseDevice/${c.input}`, (c) => {
    try {
      const d = parseDevice(c.input);
      return c.errorEquals !== undefined ? `accepted ${JSON.stringify(d)}` : diff(d, c.expected);
    } catch (err) {
      return c.errorEquals !== undefined ? diff((err as Error).message, c.errorEquals) : `threw ${(err as Error).message}`;
    }
  }, KNOWN_FAILURES);
});

test('unit-cases: exposePorts', () => {
  runSet('exposePorts', units.exposePorts as any[], (c) => `exposePorts/${c.api}/${c.name ?? c.spec ?? JSON.stringify(c.specs)}`, (c) => {
    try {
      const got = c.api === 'parsePort' ? parsePortSpec(c.spec) : (c.specs as string[]).flatMap(parsePortSpec);
      return c.errorEquals !== undefined || c.expectError ? `accepted ${JSON.stringify(got)}` : diff(got, c.expected);
    } catch (err) {
      const msg = (err as Error).message;
      if (c.errorEquals !== undefined) return diff(msg, c.errorEquals);
      return c.expectError ? undefined : `threw ${msg}`;
    }
  }, KNOWN_FAILURES);
});

test('unit-cases: envList', () => {
  runSet('envList', units.envList as any[], (c) => `envList/${c.api}/${JSON.stringify(c.env ?? c.input)}/${c.key ?? ''}`, (c) => {
    if (c.api === 'addEnv') return diff(addEnv(c.env, c.key, c.value), c.expected);
    const kv = parseKeyValue(c.input);
    return diff([kv.key, kv.value], [c.expectedKey, c.expectedValue]);
  }, KNOWN_FAILURES);
});

test('unit-cases: builderFlags', () => {
  runSet('builderFlags', units.builderFlags as any[], (c) => `builderFlags/${JSON.stringify(c.flags)}/${JSON.stringify(c.args)}`, (c) => {
    const specs: FlagSpec[] = (c.flags as any[]).map((f) => ({ name: f.name, type: f.type, default: f.default }));
    let parsed;
    try {
      parsed = parseFlags(c.args, specs);
    } catch (err) {
      return c.expect.ok ? `rejected: ${(err as Error).message}` : undefined;
    }
    if (!c.expect.ok) return 'accepted';
    if (c.expect.values) {
      const values: Record<string, unknown> = {};
      for (const k of Object.keys(c.expect.values)) {
        const spec = specs.find((s) => s.name === k)!;
        values[k] = spec.type === 'bool' ? parsed.bool(k) : parsed.string(k);
      }
      const why = diff(values, c.expect.values);
      if (why) return why;
    }
    if (c.expect.used) return diff([...parsed.used].sort(), [...c.expect.used].sort());
    return undefined;
  }, KNOWN_FAILURES);
});

test.run();

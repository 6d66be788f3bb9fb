/**
 * Runs every Linux row of the BuildKit shell-lexer vectors in /work/shared/conformance/shell
 * (README §4): envVarTest.json (ProcessWord, `all`+`unix` rows), wordsTest.json (ProcessWords),
 * process-word-cases.json (result + exact matched/unmatched sets + errors) and
 * env-lookup-cases.json (k=v list lookup). Known failures: none.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { ShellLexer, envFromList, envFromRecord } from '../../../src/frontend/shell-lexer.js';

const DIR = '/work/shared/conformance/shell';
const load = (name: string): any => JSON.parse(readFileSync(`${DIR}/${name}`, 'utf8'));
const lex = new ShellLexer('\\');
const test = suite('shell-conformance');

/** Row ids expected to fail, with the reason. Keep empty unless a gap is accepted. */
const KNOWN_FAILURES = new Set<string>([]);

function report(name: string, ran: number, failures: string[]): void {
  const unexpected = failures.filter((f) => !KNOWN_FAILURES.has(f.split(':')[0]!));
  console.log(`  ${name}: ${ran} rows run, ${failures.length} failing (${failures.length - unexpected.length} known)`);
  assert.equal(unexpected, [], `${name} failures`);
}

test('envVarTest.json (ProcessWord)', () => {
  const data = load('envVarTest.json');
  const env = envFromRecord(data.env);
  const l = new ShellLexer(data.escapeToken);
  const failures: string[] = [];
  let ran = 0;
  for (const c of data.cases) {
    if (c.platform === 'windows') continue;
    ran++;
    const id = `envVarTest/${c.line}`;
    try {
      const got = l.processWord(c.input, env);
      if (c.expectError) failures.push(`${id}: ${JSON.stringify(c.input)} expected error, got ${JSON.stringify(got)}`);
      else if (got !== c.expected) failures.push(`${id}: ${JSON.stringify(c.input)} → ${JSON.stringify(got)}, want ${JSON.stringify(c.expected)}`);
    } catch (e) {
      if (!c.expectError) failures.push(`${id}: ${JSON.stringify(c.input)} threw ${(e as Error).message}`);
    }
  }
  assert.ok(ran >= 228);
  report('envVarTest', ran, failures);
});

test('wordsTest.json (ProcessWords)', () => {
  const data = load('wordsTest.json');
  const failures: string[] = [];
  let ran = 0;
  for (const c of data.cases) {
    ran++;
    const id = `wordsTest/${c.line}`;
    try {
      const got = new ShellLexer(data.escapeToken).processWords(c.input, envFromList(c.env));
      if (c.expectError) failures.push(`${id}: expected error, got ${JSON.stringify(got)}`);
      else if (JSON.stringify(got) !== JSON.stringify(c.expected)) failures.push(`${id}: ${JSON.stringify(c.input)} → ${JSON.stringify(got)}, want ${JSON.stringify(c.expected)}`);
    } catch (e) {
      if (!c.expectError) failures.push(`${id}: threw ${(e as Error).message}`);
    }
  }
  assert.is(ran, 24);
  report('wordsTest', ran, failures);
});

test('process-word-cases.json (ProcessWordWithMatches)', () => {
  const data = load('process-word-cases.json');
  const failures: string[] = [];
  let ran = 0;
  for (const c of data) {
    ran++;
    try {
      const r = lex.process(c.input, envFromRecord(c.env));
      if (c.expectError) {
        failures.push(`${c.id}: expected error, got ${JSON.stringify(r.result)}`);
        continue;
      }
      if (r.result !== c.expected) failures.push(`${c.id}: ${JSON.stringify(c.input)} → ${JSON.stringify(r.result)}, want ${JSON.stringify(c.expected)}`);
      if (c.matched && JSON.stringify([...r.matched].sort()) !== JSON.stringify([...c.matched].sort())) failures.push(`${c.id}: matched ${[...r.matched]} want ${c.matched}`);
      if (c.unmatched && JSON.stringify([...r.unmatched].sort()) !== JSON.stringify([...c.unmatched].sort())) failures.push(`${c.id}: unmatched ${[...r.unmatched]} want ${c.unmatched}`);
    } catch (e) {
      const msg = (e as Error).message;
      if (!c.expectError) failures.push(`${c.id}: threw ${msg}`);
      else if (c.errorContains && !msg.includes(c.errorContains)) failures.push(`${c.id}: error ${JSON.stringify(msg)} lacks ${JSON.stringify(c.errorContains)}`);
    }
  }
  assert.is(ran, 56);
  report('process-word-cases', ran, failures);
});

test('env-lookup-cases.json', () => {
  const data = load('env-lookup-cases.json');
  const failures: string[] = [];
  data.forEach((c: any, i: number) => {
    const got = envFromList(c.envList).get(c.lookup) ?? '';
    if (got !== c.expected) failures.push(`env-lookup/${i}: got ${JSON.stringify(got)} want ${JSON.stringify(c.expected)}`);
  });
  report('env-lookup-cases', data.length, failures);
});

test('errors are ShellLexErrors with BuildKit text', () => {
  assert.throws(() => lex.processWord('${FOO:?must be set}', envFromRecord({})), /FOO: must be set/);
  assert.throws(() => lex.processWord('${}', envFromRecord({})), /bad substitution/);
});

test.run();

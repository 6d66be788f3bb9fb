/** ignorefile-cases.json (README §6.4): every row, Linux. Known failures: none. */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { parseDockerignore } from '../../../src/frontend/dockerignore.js';

const test = suite('dockerignore');
const cases = JSON.parse(readFileSync('/work/shared/conformance/dockerignore/ignorefile-cases.json', 'utf8'));

test('ignorefile-cases.json', () => {
  const failures: string[] = [];
  for (const c of cases) {
    if (c.platform === 'windows') continue;
    const got = parseDockerignore(c.input ?? '');
    if (JSON.stringify(got) !== JSON.stringify(c.expected)) failures.push(`${c.id}: ${JSON.stringify(got)} want ${JSON.stringify(c.expected)}`);
  }
  console.log(`  ignorefile-cases: ${cases.length} rows run, ${failures.length} failing`);
  assert.equal(failures, []);
});

test('comments only at column 0, negation cleaned', () => {
  assert.equal(parseDockerignore('# c\n  # x\n!/foo/\r\n/\n'), ['# x', '!foo', '/']);
});

test.run();

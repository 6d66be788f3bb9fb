import * as assert from 'uvu/assert';

/** Where the shared BuildKit conformance vectors live (see its README). */
export const CONFORMANCE_DIR = '/work/shared/conformance';

/**
 * Runs one conformance set: `check` returns undefined when a case passes, else why it failed.
 * Prints the pass count; fails on any unexpected failure and on a known failure that now passes
 * (so the known-failures list can only shrink).
 */
export function runSet<C>(name: string, cases: readonly C[], id: (c: C) => string, check: (c: C) => string | undefined, known: ReadonlyMap<string, string>): void {
  const failures: string[] = [];
  const fixed: string[] = [];
  let passed = 0;
  for (const c of cases) {
    const key = id(c);
    let why: string | undefined;
    try {
      why = check(c);
    } catch (e) {
      why = `threw ${(e as Error).message}`;
    }
    if (why === undefined) {
      passed++;
      if (known.has(key)) fixed.push(key);
    } else if (!known.has(key)) {
      failures.push(`${key}: ${why}`);
    }
  }
  console.log(`  ${name}: ${passed}/${cases.length} pass${known.size > 0 ? ` (${cases.length - passed} known failures)` : ''}`);
  assert.equal(failures, [], `${name}: unexpected failures`);
  assert.equal(fixed, [], `${name}: known failures that now pass (remove them from the list)`);
}

/** Compares as JSON; undefined when equal, else a got/want message. */
export function diff(got: unknown, want: unknown): string | undefined {
  const g = JSON.stringify(got);
  const w = JSON.stringify(want);
  return g === w ? undefined : `got ${g}, want ${w}`;
}

import * as assert from 'uvu/assert';
import type { BuildRoot } from './build-root.js';
import { tsbuild } from './cli.js';
import { rawjsonEvents } from './progress-events.js';

/**
 * BuildKit's checkLinterWarnings (frontend/dockerfile/dockerfile_check_test.go) for tsbuild:
 * "warntype=progress" is a real build whose rawjson progress must carry exactly `warnings`
 * (rule, description, URL, message, line); "warntype=unmarshal", BuildKit's lint request, is
 * `tsbuild build --check`, which must list exactly `unmarshalWarnings` (default: `warnings`).
 */

/** BuildKit's expectedLintWarning: Detail is the message, Level is always 1 (a warning). */
export interface ExpectedWarning {
  readonly rule: string;
  readonly description: string;
  readonly url?: string;
  readonly detail: string;
  readonly line: number;
}

export interface LintCase {
  readonly dockerfile: string;
  readonly dockerignore?: string;
  readonly files?: Readonly<Record<string, string>>;
  readonly warnings?: readonly ExpectedWarning[];
  readonly unmarshalWarnings?: readonly ExpectedWarning[];
  /** An error both the build and `--check` end with (BuildKit's BuildErr), at `errLine`. */
  readonly buildErr?: string;
  /** An error only the build ends with (StreamBuildErrRegexp), at `errLine`. */
  readonly streamErr?: RegExp;
  readonly errLine?: number;
  /** BuildKit's FrontendAttrs `build-arg:K=V`. */
  readonly buildArgs?: Readonly<Record<string, string>>;
}

const byLineThenDetail = (a: { line: number; detail: string }, b: { line: number; detail: string }) => a.line - b.line || (a.detail < b.detail ? -1 : a.detail > b.detail ? 1 : 0);

/**
 * Collects a test's cases and checks them a few at a time (each has a context of its own);
 * `settle` throws the first failure.
 */
export function lintCases(env: BuildRoot, parallel = 4): { check(c: LintCase, what?: string): void; settle(): Promise<void> } {
  let queue: (() => Promise<void>)[] = [];
  return {
    check(c, what) {
      queue.push(() => checkLinterWarnings(env, c, what));
    },
    async settle() {
      const jobs = queue;
      queue = [];
      const errors: unknown[] = [];
      const worker = async () => {
        for (let job = jobs.shift(); job; job = jobs.shift()) await job().catch((e: unknown) => void errors.push(e));
      };
      await Promise.all(Array.from({ length: parallel }, worker));
      if (errors.length > 0) throw errors[0];
    },
  };
}

export async function checkLinterWarnings(env: BuildRoot, c: LintCase, what = ''): Promise<void> {
  const files: Record<string, string> = { ...(c.files ?? {}) };
  if (c.dockerignore !== undefined) files['.dockerignore'] = c.dockerignore;
  const ctx = await env.context(c.dockerfile, files);
  const args = Object.entries(c.buildArgs ?? {}).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`]);
  const label = (s: string) => `${what}${what ? ' ' : ''}${s}\n${c.dockerfile}`;

  // Both at once: they share the root as concurrent tsbuild processes may.
  const [built, checked] = await Promise.all([
    tsbuild(['--root', env.root, 'build', '--progress', 'rawjson', ...args, ctx], { cwd: ctx }),
    tsbuild(['--root', env.root, 'build', '--check', ...args, ctx], { cwd: ctx }),
  ]);

  // warntype=progress
  const got = rawjsonEvents(built.stderr).flatMap((e) =>
    e.type === 'warning' && e.rule !== undefined
      ? [{ rule: e.rule, description: e.description, url: e.url, message: e.message, line: e.location?.line ?? 0, detail: e.message.slice(e.rule.length + 2) }]
      : [],
  );
  const want = [...(c.warnings ?? [])].sort(byLineThenDetail);
  assert.equal(
    got.sort(byLineThenDetail).map((w) => ({ rule: w.rule, description: w.description, url: w.url, message: w.message, line: w.line })),
    want.map((w) => ({ rule: w.rule, description: w.description, url: w.url, message: `${w.rule}: ${w.detail}`, line: w.line })),
    label('progress warnings'),
  );
  const err = c.buildErr ?? c.streamErr;
  if (err === undefined) {
    assert.is(built.code, 0, label(`build succeeds: ${built.stderr.split('\n').filter((l) => !l.startsWith('{')).join('\n')}`));
  } else {
    assert.is(built.code, 1, label('build fails'));
    const text = built.stderr.split('\n').filter((l) => !l.startsWith('{')).join('\n');
    if (typeof err === 'string') assert.ok(text.includes(err), label(`build error has ${JSON.stringify(err)}: ${text}`));
    else assert.match(text, err, label('build error'));
    if (c.errLine !== undefined) assert.match(text, new RegExp(`Dockerfile:${c.errLine}: `), label(`error at line ${c.errLine}`));
  }

  // warntype=unmarshal
  const listed = [...checked.stdout.matchAll(/^Dockerfile:(\d+): (\w+): (.*)$/gm)].map((m) => ({ rule: m[2]!, detail: m[3]!, line: Number(m[1]) }));
  const wantListed = [...(c.unmarshalWarnings ?? c.warnings ?? [])].sort(byLineThenDetail).map((w) => ({ rule: w.rule, detail: w.detail, line: w.line }));
  assert.equal(listed.sort(byLineThenDetail), wantListed, label('--check findings'));
  if (c.buildErr !== undefined) {
    assert.is(checked.code, 1, label('--check fails'));
    assert.ok(checked.stderr.includes(c.buildErr), label(`--check error has ${JSON.stringify(c.buildErr)}: ${checked.stderr}`));
    if (c.errLine !== undefined) assert.match(checked.stderr, new RegExp(`Dockerfile:${c.errLine}: `), label(`--check error at line ${c.errLine}`));
  } else {
    assert.is(checked.code, wantListed.length > 0 ? 1 : 0, label(`--check exit code: ${checked.stderr}`));
    assert.match(checked.stdout, /Check complete/, label('--check summary'));
  }
}

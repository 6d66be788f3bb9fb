import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { useBuildRoot } from '../../helpers/build-root.js';
import { tsbuild } from '../../helpers/cli.js';

/**
 * BuildKit's errors_test.go: a failed build names its Dockerfile and the lines of the failing
 * instruction (BuildKit's source map ranges; tsbuild's `FILE:LINE:` and the `>>>` lines of the
 * snippet it prints). alpine is the local busybox.
 */
const test = suite('buildkit-port: checks (errors_test.go)');
const env = useBuildRoot(test, 'bk-errors');

const cases: { name: string; dockerfile: string; errorLine: number[] }[] = [
  { name: 'invalidenv', dockerfile: 'from busybox\nenv', errorLine: [2] },
  { name: 'invalidsyntax', dockerfile: '#syntax=foobar\nfrom busybox', errorLine: [1] },
  { name: 'invalidrun', dockerfile: 'from scratch\nenv foo=bar\nrun what', errorLine: [3] },
  { name: 'invalidcopy', dockerfile: 'from scratch\nenv foo=bar\ncopy foo bar\nenv bar=baz', errorLine: [3] },
  { name: 'invalidflag', dockerfile: 'from scratch\nenv foo=bar\ncopy --foo=bar / /\nenv bar=baz', errorLine: [3] },
  // An image that does not exist: no registry has it (offline, none answers).
  { name: 'invalidcopyfrom', dockerfile: 'from scratch\nenv foo=bar\ncopy --from=invalid foo bar\nenv bar=baz', errorLine: [3] },
  { name: 'invalidmultiline', dockerfile: 'from scratch\nrun wh\\\nat\nenv bar=baz', errorLine: [2, 3] },
];

test('testErrorsSourceMap: the error names the Dockerfile and the lines of the failing instruction', async () => {
  const results = await Promise.all(
    cases.map(async (c) => {
      const ctx = await env.context(c.dockerfile);
      return { c, r: await tsbuild(['--root', env.root, 'build', '--progress', 'plain', ctx], { cwd: ctx }) };
    }),
  );
  for (const { c, r } of results) {
    assert.is(r.code, 1, c.name);
    const error = r.stderr.slice(r.stderr.indexOf('\nerror: ') + 1);
    assert.match(error, new RegExp(`^error: Dockerfile:${c.errorLine[0]}: `), `${c.name}: ${error}`);
    // The snippet quotes the Dockerfile as it is, and marks exactly the instruction's lines.
    const snippet = [...error.matchAll(/^( >>> |     )\s*(\d+) \| (.*)$/gm)];
    assert.equal(snippet.filter((m) => m[1] === ' >>> ').map((m) => Number(m[2])), c.errorLine, c.name);
    const lines = c.dockerfile.split('\n');
    for (const m of snippet) assert.is(m[3], lines[Number(m[2]) - 1], `${c.name}: line ${m[2]} quoted as written`);
  }
});

test.run();

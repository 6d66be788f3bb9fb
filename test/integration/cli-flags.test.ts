import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useBuildRoot } from '../helpers/build-root.js';
import { CLI, tsbuild, tsbuildOk } from '../helpers/cli.js';
import { tool } from '../helpers/run-tool.js';

/** The flags a CI step uses, usage errors, help and version, on real builds. */
const test = suite('integration: CI flags and usage');
const env = useBuildRoot(test, 'flags');
const at = () => ['--root', env.root];
const stdinLeftovers = async () => (await readdir(tmpdir())).filter((n) => n.startsWith('tsbuild-stdin-'));

test('--quiet prints only the image ID; --iidfile, --metadata-file (BuildKit keys), --label', async () => {
  const dir = await env.context('FROM busybox\nRUN echo built\n');
  const iid = join(env.work, 'iid');
  const meta = join(env.work, 'meta.json');
  const r = await tsbuildOk([...at(), 'build', '-q', '--iidfile', iid, '--metadata-file', meta, '--label', 'org.example.team=ci', '-t', 'flags:1', dir]);
  assert.match(r.stdout, /^sha256:[0-9a-f]{64}\n$/);
  assert.is(r.stderr, '', 'nothing but the ID with --quiet');
  assert.is(await readFile(iid, 'utf8'), r.stdout.trim());
  const m = JSON.parse(await readFile(meta, 'utf8')) as Record<string, unknown>;
  assert.is(m['containerimage.config.digest'], r.stdout.trim());
  assert.match(String(m['containerimage.digest']), /^sha256:/);
  assert.is((m['containerimage.descriptor'] as { digest: string }).digest, m['containerimage.digest']);
  assert.is(m['image.name'], 'docker.io/library/flags:1');
  const doc = JSON.parse((await tsbuildOk([...at(), 'inspect', 'flags:1'])).stdout) as { Config: { config: { Labels: Record<string, string> } } };
  assert.is(doc.Config.config.Labels['org.example.team'], 'ci');
});

test('--annotation lands in the image manifest; other annotation types are refused', async () => {
  const dir = await env.context('FROM busybox\n');
  const layout = join(env.work, 'annotated');
  await tsbuildOk([...at(), 'build', '--annotation', 'org.opencontainers.image.source=https://example.com/repo', '--annotation', 'manifest:org.example.b=2',
    '--output', `type=oci,dest=${layout},tar=false`, '-t', 'annotated', dir]);
  const manifest = JSON.parse(await tool('skopeo', ['inspect', '--raw', `oci:${layout}:latest`])) as { annotations?: Record<string, string> };
  assert.equal(manifest.annotations, { 'org.example.b': '2', 'org.opencontainers.image.source': 'https://example.com/repo' });
  const bad = await tsbuild([...at(), 'build', '--annotation', 'index:a=b', dir]);
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /--annotation "index:a=b": only manifest annotations/);
});

test('exports report bytes: progress events for every exported blob, ending at its size', async () => {
  const dir = await env.context('FROM busybox\nRUN head -c 3000000 /dev/urandom > /noise\n');
  const out = join(env.work, 'progress.tar');
  const r = await tsbuildOk([...at(), 'build', '--progress', 'rawjson', '--output', `type=oci,dest=${out}`, dir]);
  const events = r.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { type: string; id?: string; current?: number; total?: number });
  const exported = events.filter((e) => e.type === 'progress' && e.id?.startsWith('export sha256:'));
  const manifest = JSON.parse(await tool('skopeo', ['inspect', '--raw', `oci-archive:${out}`])) as { layers: { digest: string; size: number }[] };
  for (const layer of manifest.layers) {
    const last = exported.filter((e) => e.id === `export ${layer.digest}`).at(-1);
    assert.ok(last, `progress for ${layer.digest}`);
    assert.equal([last!.current, last!.total], [layer.size, layer.size]);
  }
  assert.ok(exported.some((e) => e.current! < e.total!), 'a 3 MB layer reports before it ends');
});

test('--file - (Dockerfile on stdin) with --build-arg-file, --build-arg winning', async () => {
  const dir = await env.context(undefined, { 'a.txt': 'from context\n' });
  const args = join(env.work, 'args');
  await writeFile(args, '# comment\n\nA=1\nB=from-file\n');
  const r = await tsbuild([...at(), 'build', '--progress', 'plain', '--build-arg-file', args, '--build-arg', 'B=from-flag', '-f', '-', dir], {
    input: 'FROM busybox\nARG A\nARG B\nCOPY a.txt /\nRUN echo "A=$A B=$B" && cat /a.txt\n',
  });
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stderr, /A=1 B=from-flag/);
  assert.match(r.stderr, /from context/);
  assert.equal(await stdinLeftovers(), []);
});

test('bad --build-arg-file line is a usage error naming file:line', async () => {
  const dir = await env.context('FROM busybox\n');
  const args = join(env.work, 'bad-args');
  await writeFile(args, 'OK=1\n9bad=x\n');
  const r = await tsbuild([...at(), 'build', '--build-arg-file', args, dir]);
  assert.is(r.code, 2);
  assert.match(r.stderr, new RegExp(`${args}:2: invalid build argument name "9bad"`));
});

test('context - : a gzipped tar on stdin, and a lone Dockerfile on stdin', async () => {
  const src = await env.context('FROM busybox\nCOPY hello.txt /\nRUN cat /hello.txt\n', { 'hello.txt': 'hello from the tar\n' });
  const out = await tool('sh', ['-c', 'tar -C "$1" -cz . | "$2" "$3" --root "$4" build --progress plain -t fromtar - 2>&1', 'sh', src, process.execPath, CLI, env.root]);
  assert.match(out, /hello from the tar/);
  const lone = await tsbuild([...at(), 'build', '--progress', 'plain', '-'], { input: 'FROM busybox\nRUN echo lone dockerfile\n' });
  assert.is(lone.code, 0, lone.stderr);
  assert.match(lone.stderr, /lone dockerfile/);
  const both = await tsbuild([...at(), 'build', '-f', '-', '-'], { input: 'FROM busybox\n' });
  assert.is(both.code, 2);
  assert.match(both.stderr, /cannot both be read from standard input/);
  assert.equal(await stdinLeftovers(), []);
});

test('a failing Dockerfile from stdin still shows its snippet, and its spool is removed at exit', async () => {
  const dir = await env.context(undefined);
  const r = await tsbuild([...at(), 'build', '--progress', 'quiet', '-f', '-', dir], { input: 'FROM busybox\nRUN echo out && exit 3\n' });
  assert.is(r.code, 1);
  assert.match(r.stderr, /Dockerfile:2: process .* exit code: 3/);
  assert.match(r.stderr, / >>> +2 \| RUN echo out && exit 3/);
  assert.match(r.stderr, /------ last output lines ------\n {2}out\n/);
  assert.equal(await stdinLeftovers(), []);
});

test('usage errors: exit 2, the flag named, the nearest valid one suggested, no stack trace', async () => {
  const cases: [string[], RegExp][] = [
    [['build', '--tagg', 'x', '.'], /unknown option '--tagg'\n\(Did you mean --tag\?\)/],
    [['imagez'], /unknown command 'imagez' \(Did you mean images\?\)/],
    [['build', '--progress', 'fancy', '.'], /'--progress <mode>' argument 'fancy' is invalid. Allowed choices are auto, tty, plain, rawjson, quiet/],
    [['save', 'x'], /required option '-o, --output <file>' not specified/],
    [['images', '--format', 'yaml'], /Allowed choices are table, json/],
  ];
  for (const [args, re] of cases) {
    const r = await tsbuild([...at(), ...args]);
    assert.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
    assert.not.match(r.stderr, /\n\s+at /);
  }
});

test('--help for every verb lists its flags one per line; --version', async () => {
  const top = (await tsbuildOk(['--help'])).stdout;
  const verbs = ['build', 'images', 'tag', 'rmi', 'inspect', 'history', 'save', 'load', 'run', 'config'];
  for (const v of verbs) assert.match(top, new RegExp(`^  ${v}\\b`, 'm'), `${v} listed in tsbuild --help`);
  for (const v of verbs) {
    const h = await tsbuildOk([v, '--help']);
    assert.match(h.stdout, new RegExp(`^Usage: tsbuild ${v}`, 'm'));
    assert.match(h.stdout, /^ {2}-h, --help +display help for command$/m);
  }
  const build = (await tsbuildOk(['build', '--help'])).stdout;
  for (const f of ['--file', '--tag', '--build-arg', '--build-arg-file', '--progress', '--iidfile', '--metadata-file', '--quiet', '--label']) assert.match(build, new RegExp(`^ +(-\\w, )?${f}\\b`, 'm'));
  const pkg = JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  assert.is((await tsbuildOk(['--version'])).stdout, pkg.version + '\n');
  // Answered by the launcher alone, by the bundle (a global option first), and by the bundle
  // loaded for source maps (--debug).
  assert.is((await tsbuildOk(['-V'])).stdout, pkg.version + '\n');
  assert.is((await tsbuildOk(['--config', '/dev/null', '--version'])).stdout, pkg.version + '\n');
  assert.is((await tsbuildOk(['--debug', '--version'])).stdout, pkg.version + '\n');
});

test('build checks: warnings in the build output, --check lists them without building, # check=error=true fails the build', async () => {
  const df = 'FROM busybox as base\nCMD echo hi\n';
  const ctx = await env.context(df);
  const built = await tsbuildOk([...at(), 'build', '--progress', 'plain', ctx]);
  assert.match(built.stderr, /WARNING: FromAsCasing: 'as' and 'FROM' keywords' casing do not match \(.*Dockerfile:1\)/);
  assert.match(built.stderr, /WARNING: JSONArgsRecommended: JSON arguments recommended for CMD/);
  const checked = await tsbuild([...at(), 'build', '--check', '-t', 'never-built', ctx], { cwd: ctx });
  assert.is(checked.code, 1);
  assert.is(checked.stdout, `Dockerfile:1: FromAsCasing: 'as' and 'FROM' keywords' casing do not match\nDockerfile:2: JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended behavior related to OS signals\nCheck complete, 2 warnings have been found!\n`);
  assert.not.match((await tsbuildOk([...at(), 'images'])).stdout, /never-built/, '--check builds nothing');
  // The base image is resolved: its ENV counts as defined, a typo of it does not.
  const vars = await tsbuild([...at(), 'build', '--check', await env.context('FROM busybox\nENV P=$PATH Q=$PAHT\n')]);
  assert.is(vars.code, 1);
  assert.match(vars.stdout, /Dockerfile:2: UndefinedVar: Usage of undefined variable '\$PAHT' \(did you mean \$PATH\?\)\n/);
  assert.not.match(vars.stdout, /'\$PATH'/);
  const clean = await tsbuild([...at(), 'build', '--check', await env.context('FROM busybox\nCMD ["sh"]\n')]);
  assert.equal([clean.code, clean.stdout], [0, 'Check complete, no warnings found.\n']);
  const strict = await tsbuild([...at(), 'build', '-t', 'strict', await env.context(`# check=error=true\n${df}`)]);
  assert.is(strict.code, 1);
  assert.match(strict.stderr, /Dockerfile:2: lint violation found for rules: FromAsCasing, JSONArgsRecommended/);
  const skipped = await tsbuild([...at(), 'build', '--build-arg', 'BUILDKIT_DOCKERFILE_CHECK=skip=all;error=true', await env.context(`# check=error=true\n${df}`)]);
  assert.is(skipped.code, 0, skipped.stderr);
  assert.not.match(skipped.stderr, /were not consumed/, 'the check build-arg is a built-in');
});

test.run();

/**
 * Heredocs end to end (issue 02 §4): the heredoc build cases of the BuildKit conformance data
 * (frontend/build-cases.json, ids `heredoc/*`) run as real builds on the local busybox base,
 * plus own cases: several heredocs on one line, `<<-` with an interpreter, a shebang script,
 * COPY heredoc modes. Files are checked on the local export.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { useBuildRoot } from '../helpers/build-root.js';
import { tsbuildOk } from '../helpers/cli.js';
import { CONFORMANCE_DIR } from '../conformance/report.js';

const test = suite('integration: heredocs');
const env = useBuildRoot(test, 'heredoc');

/** Build-case id → reason it cannot pass yet. */
const KNOWN_FAILURES = new Map<string, string>([]);

/**
 * The local busybox base (built from busybox-static) links no `adduser` applet; the user is
 * written to /etc/passwd and /etc/group directly instead. Nothing else in a case is changed.
 */
const adapt = (dockerfile: string): string =>
  dockerfile.replace('RUN adduser -D user', "RUN echo 'user:x:1234:1234::/home/user:/bin/sh' >> /etc/passwd && echo 'user:x:1234:' >> /etc/group");

async function build(dockerfile: string, name: string): Promise<string> {
  const ctx = await env.context(undefined);
  await writeFile(join(ctx, 'Dockerfile'), dockerfile);
  const out = join(env.work, `${name}-out`);
  await tsbuildOk(['--root', env.root, 'build', '--output', `type=local,dest=${out}`, ctx]);
  return out;
}

const cases = (JSON.parse(readFileSync(`${CONFORMANCE_DIR}/frontend/build-cases.json`, 'utf8')) as any[]).filter((c) => c.id.startsWith('heredoc/'));

for (const c of cases) {
  test(`build-case ${c.id}`, async () => {
    if (KNOWN_FAILURES.has(c.id)) return;
    const out = await build(adapt(c.dockerfile), c.id.replace(/\W/g, '-'));
    for (const [path, want] of Object.entries(c.expect.files as Record<string, string>)) {
      assert.is(await readFile(join(out, path), 'utf8'), want, `${c.id}: ${path}`);
    }
  });
}

test('several heredocs on one line, <<- with an interpreter, a shebang script, COPY --chmod', async () => {
  const df = [
    'FROM busybox',
    'ARG who=world',
    'RUN cat <<A > /a && cat <<"B" > /b',
    'first $who',
    'A',
    'second $who',
    'B',
    'RUN <<-EOF sh',
    '\techo "tabs stripped" > /c',
    '\tEOF',
    'RUN <<EOF',
    '#!/bin/sh -e',
    'echo "script $0" > /d',
    'EOF',
    'COPY --chmod=0750 <<EOF <<EOF2 /files/',
    'hello $who',
    'EOF',
    'literal',
    'EOF2',
    '',
  ].join('\n');
  const out = await build(df, 'own');
  assert.is(await readFile(join(out, 'a'), 'utf8'), 'first world\n', 'unquoted heredoc: the shell expands');
  assert.is(await readFile(join(out, 'b'), 'utf8'), 'second $who\n', 'quoted heredoc: literal');
  assert.is(await readFile(join(out, 'c'), 'utf8'), 'tabs stripped\n');
  assert.is(await readFile(join(out, 'd'), 'utf8'), 'script /dev/pipes/EOF\n', 'shebang body runs as a script at /dev/pipes/<name>');
  assert.is(await readFile(join(out, 'files/EOF'), 'utf8'), 'hello world\n');
  assert.is(await readFile(join(out, 'files/EOF2'), 'utf8'), 'literal\n');
  assert.is((await stat(join(out, 'files/EOF'))).mode & 0o7777, 0o750);
  assert.is(await stat(join(out, 'dev/pipes')).then(() => true, () => false), false, 'the script never lands in a layer');
});

test.run();

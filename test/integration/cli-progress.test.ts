import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { useBuildRoot } from '../helpers/build-root.js';
import { HAVE_TMUX, withTmux } from '../helpers/tmux.js';
import { CLI, tsbuildOk } from '../helpers/cli.js';

const GOLDEN = fileURLToPath(new URL('../../../test/golden/cli/', import.meta.url));
const DOCKERFILE = 'FROM busybox\nRUN echo hello && sleep 0.2 && echo world >&2\nRUN echo two\n';

/** What the user sees of a small build in each progress mode; real builds, volatile parts normalized. */
const test = suite('integration: progress output');
const env = useBuildRoot(test, 'progress');

async function golden(name: string, actual: string): Promise<void> {
  const path = GOLDEN + name;
  if (process.env.UPDATE_GOLDEN) await writeFile(path, actual);
  assert.fixture(actual, await readFile(path, 'utf8'), `golden ${name} (regenerate with UPDATE_GOLDEN=1 and review)`);
}

const normalize = (s: string) =>
  s
    .replace(/sha256:[0-9a-f]{64}/g, 'sha256:<digest>')
    .replace(/\(\d\d:\d\d:\d\d\)/g, '(<time>)')
    .replace(/DONE \d+\.\ds/g, 'DONE <t>s')
    .replace(/^(#\d+) \d+\.\d{3} /gm, '$1 <t> ');

test('plain (golden)', async () => {
  const dir = await env.context(DOCKERFILE);
  const r = await tsbuildOk(['--root', env.root, 'build', '--no-cache', '--progress', 'plain', '-t', 'progress-plain', dir]);
  await golden('plain-build.txt', normalize(r.stderr));
});

test('rawjson (golden): one event per line, digests stable, times increasing', async () => {
  const dir = await env.context(DOCKERFILE);
  const r = await tsbuildOk(['--root', env.root, 'build', '--no-cache', '--progress', 'rawjson', '-t', 'progress-json', dir]);
  const lines = r.stderr.trimEnd().split('\n');
  const last = lines.pop()!;
  assert.match(last, /^image sha256:[0-9a-f]{64} tagged docker.io\/library\/progress-json:latest$/);
  const events = lines.map((l) => JSON.parse(l) as { at: number; vertex?: string });
  for (let i = 1; i < events.length; i++) assert.ok(events[i]!.at >= events[i - 1]!.at, 'times never go back');
  const shown = events.map(({ at, ...rest }) => (void at, rest));
  await golden('rawjson-build.jsonl', normalize(shown.map((e) => JSON.stringify(e)).join('\n') + '\n'));
});

test('tty: the live view under a real pseudo-terminal ends in one clean final screen', async () => {
  if (!HAVE_TMUX) {
    console.log('skipped: tmux is not installed');
    return;
  }
  const dir = await env.context('FROM busybox\nRUN for i in 1 2 3 4 5; do echo line $i; sleep 0.1; done\nRUN echo done\n');
  const cmd = `env -u CI -u NO_COLOR ${process.execPath} ${CLI} --root ${env.root} build -t progress-tty ${dir}; echo EXIT=$?; sleep 60`;
  await withTmux(cmd, { width: 160, height: 30 }, async (tty) => {
    const screen = await tty.waitFor(/EXIT=\d+/);
    assert.match(screen, /EXIT=0/, screen);
    const lines = screen.split('\n').map((l) => l.trimEnd());
    assert.is(lines.filter((l) => l.startsWith('[+] Building')).length, 1, `one header, redrawn in place:\n${screen}`);
    assert.match(lines[0]!, /^\[\+\] Building \d+\.\ds \(3\/3\) FINISHED$/);
    assert.match(lines[1]!, /^isolation: overlay \(root with CAP_SYS_ADMIN: overlayfs and runc\)$/);
    assert.match(lines[2]!, /^=> (CACHED )?\[internal\] load metadata for docker.io\/library\/busybox:latest +\d+\.\ds$/);
    assert.match(lines[3]!, /^=> \[2\/3\] RUN for i in 1 2 3 4 5; do echo line \$i; sleep 0\.1; done +\d+\.\ds$/);
    assert.match(lines[4]!, /^=> \[3\/3\] RUN echo done +\d+\.\ds$/);
    assert.match(lines[5]!, /^image sha256:[0-9a-f]{64} tagged docker.io\/library\/progress-tty:latest$/);
    assert.not.match(screen, /line \d|#\d+ /, 'no output of finished steps, no plain lines');
  });
});

test.run();

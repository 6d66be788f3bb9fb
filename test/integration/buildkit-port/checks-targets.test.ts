import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tsbuildOk } from '../../helpers/cli.js';

/**
 * BuildKit's dockerfile_targets_test.go: the frontend.targets request is buildx's `--call
 * targets`, here `tsbuild build --call targets[,format=json]` (it only parses: no root, no base
 * image is needed).
 */
const test = suite('buildkit-port: checks (dockerfile_targets_test.go)');
let dir = '';
test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tsbuild-bk-targets-'));
});
test.after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const dockerfile = `
# build defines stage for compiling the binary
FROM alpine AS build
RUN true

FROM busybox as second
RUN false

FROM alpine
RUN false

# binary returns the compiled binary
FROM second AS binary
`;

interface Target {
  name?: string;
  default?: boolean;
  description?: string;
  base?: string;
  location: { sourceIndex: number; ranges: { start: { line: number } }[] };
}

test('testTargetsList: every stage with its name, base, description comment, default and line', async () => {
  await writeFile(join(dir, 'Dockerfile'), dockerfile);
  const list = JSON.parse((await tsbuildOk(['build', '--call', 'targets,format=json', dir])).stdout) as { targets: Target[]; sources: string[] };
  assert.equal(list.sources.map((s) => Buffer.from(s, 'base64').toString()), [dockerfile]);
  const got = list.targets.map((t) => [t.name ?? '', t.base, t.description ?? '', t.default ?? false, t.location.sourceIndex, t.location.ranges[0]!.start.line]);
  assert.equal(got, [
    ['build', 'alpine', 'defines stage for compiling the binary', false, 0, 3],
    ['second', 'busybox', '', false, 0, 6],
    ['', 'alpine', '', false, 0, 9],
    // BuildKit's test leaves the base of this one unchecked.
    ['binary', 'second', 'returns the compiled binary', true, 0, 13],
  ]);
  const table = (await tsbuildOk(['build', '--call', 'targets', dir])).stdout;
  assert.match(table, /^TARGET +DESCRIPTION\nbuild +defines stage for compiling the binary\nsecond\n\nbinary \(default\) +returns the compiled binary\n$/);
});

test.run();

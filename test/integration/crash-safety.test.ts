import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { useBuildRoot } from '../helpers/build-root.js';
import { CLI, tsbuildOk } from '../helpers/cli.js';
import { mountsUnder } from '../helpers/mounts.js';
import { runcContainers } from '../helpers/run-tool.js';
import { verifyStore } from '../helpers/verify-store.js';

/**
 * SIGKILL gives tsbuild no chance to clean up: whatever it leaves (mounts, runc containers,
 * temp files, half-committed layers) must be garbage that the next build removes, and never a
 * cache entry pointing at missing or wrong content.
 */
const test = suite('integration/crash-safety');
const env = useBuildRoot(test, 'crash');

const KILLS = 20;

/**
 * SIGKILL does not reach tsbuild's children: a `runc run` or `mount` it started goes on as an
 * orphan and may finish after the next build's clean-up has run. What a dead build "left" is only
 * known once those are gone, so wait for every process naming this root (ours excluded).
 */
async function orphansGone(root: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const busy: string[] = [];
    for (const pid of await readdir('/proc')) {
      if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
      const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
      // mount(8) and umount(8) run in the root with relative paths: their cwd gives them away.
      const cwd = await readlink(`/proc/${pid}/cwd`).catch(() => '');
      if (cmd.includes(root) || cwd === root || cwd.startsWith(root + '/')) busy.push(`${pid}: ${cmd.replaceAll('\0', ' ').trim()}`);
    }
    if (busy.length === 0) return;
    if (Date.now() > deadline) throw new Error(`processes of killed builds still running: ${busy.join('; ')}`);
    await sleep(50);
  }
}

test(`SIGKILL at random points ${KILLS} times, then the next build cleans up and the cache is sound`, async () => {
  const ctx = await env.context(
    // The gen stage reruns for every N, so the COPY --from below it mounts gen's new rootfs to
    // checksum what it copies (its cache key): kills land in that too.
    `FROM busybox AS gen
ARG N
RUN echo "gen $N" > /gen.txt && cp /bin/busybox /gen.bin
FROM busybox
COPY big.bin /big.bin
RUN i=0; while [ $i -lt 30 ]; do echo $i >> /count; i=$((i+1)); done; sha256sum /big.bin > /sum
ARG N
RUN echo "n=$N" > /n && cp /big.bin /big2.bin
COPY small.txt /small.txt
COPY --from=gen /gen.txt /gen.bin /g/
RUN cat /n /small.txt /g/gen.txt > /out
`,
    { 'small.txt': 'small' },
  );
  await writeFile(join(ctx, 'big.bin'), randomBytes(8 << 20));
  const kills: number[] = [];
  for (let i = 0; i < KILLS; i++) {
    // Vary the build so later steps miss the cache and there is always work to interrupt.
    const child = spawn(process.execPath, [CLI, '--root', env.root, 'build', '--build-arg', `N=${i}`, '-t', 'crash', ctx], { stdio: 'ignore' });
    const delay = randomInt(20, 900);
    kills.push(delay);
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await Promise.race([sleep(delay), exited]);
    child.kill('SIGKILL');
    await exited;
    await orphansGone(env.root);
  }
  // The next build cleans up after the dead ones and works.
  await tsbuildOk(['--root', env.root, 'build', '--build-arg', 'N=final', '-t', 'crash', ctx]);
  assert.equal(mountsUnder(env.root), [], `no mounts left (kills after ${kills.join(',')} ms)`);
  assert.equal(await runcContainers(join(env.root, 'runc')), []);
  assert.equal(await verifyStore(env.root), []);
  assert.equal(await readdir(join(env.root, 'tmp')), []);
  // Every cache entry a killed build wrote is sound: a rebuild of each variant uses it and
  // produces a working image (RUN reads files from the cached layers).
  for (const n of [0, 5, 19, 'final']) {
    await tsbuildOk(['--root', env.root, 'build', '--build-arg', `N=${n}`, '-t', `crash-${n}`, ctx]);
  }
  const again = await tsbuildOk(['--root', env.root, 'build', '--progress', 'plain', '--build-arg', 'N=final', ctx]);
  assert.not.match(again.stderr, /#\d+ \[[^\]\n]*\d+\/\d+\] (RUN|COPY)[^\n]*\n#\d+ DONE/, 'fully cached');
});

test.run();

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { readdir, readFile, readlink, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { useBuildRoot } from '../helpers/build-root.js';
import { CLI, tsbuildOk, tsbuildWithoutSysAdmin } from '../helpers/cli.js';
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

/** Layer dirs (by diffID hex) whose `diff` holds `name` at its top. */
async function layersHolding(root: string, name: string): Promise<string[]> {
  const out: string[] = [];
  for (const id of await readdir(join(root, 'layers'))) {
    if (!id.startsWith('.') && (await stat(join(root, 'layers', id, 'diff', name)).catch(() => undefined))) out.push(id);
  }
  return out;
}

test('after a crash of the machine, the layer dirs it may have cut short are unpacked again from their blobs: the cache and the image stay the same', async () => {
  const ctx = await env.context(['FROM busybox', 'RUN echo made-by-run > /r && head -c 300000 /bin/busybox > /r.bin', 'COPY f /f', 'RUN cat /r /f > /c'].join('\n'), { f: 'from-context' });
  const iid = join(env.work, 'machine-crash.iid');
  await tsbuildOk(['--root', env.root, 'build', '--iidfile', iid, '-t', 'machine-crash', ctx]);
  const firstId = await readFile(iid, 'utf8');
  const marker = join(env.root, 'layers', '.unsynced');
  const [boot, since] = (await readFile(marker, 'utf8')).trim().split(' ');
  assert.ok(boot && since, 'the layers of this boot are marked as not synced');
  // What a power loss can leave of unsynced files: the RUN's layer cut short. The marker then
  // belongs to a boot that is over.
  const [runLayer] = await layersHolding(env.root, 'r.bin');
  assert.ok(runLayer);
  await truncate(join(env.root, 'layers', runLayer!, 'diff', 'r.bin'), 10);
  await writeFile(marker, `boot-that-crashed ${since}\n`);

  // Rootless tsbuild (root without CAP_SYS_ADMIN runs itself in a user namespace) recovers too.
  const again = await tsbuildWithoutSysAdmin(['--root', env.root, 'build', '--progress', 'plain', '--iidfile', iid, '-t', 'machine-crash', ctx]);
  assert.is(again.code, 0, again.stderr);
  assert.not.match(again.stderr, /#\d+ \[[^\]\n]*\d+\/\d+\] (RUN|COPY)[^\n]*\n#\d+ DONE/, 'fully cached: the layers came back from their blobs');
  assert.is(await readFile(iid, 'utf8'), firstId, 'the same image');
  assert.is((await stat(join(env.root, 'layers', runLayer!, 'diff', 'r.bin'))).size, 300000, 'the cut-short file is whole again');
  assert.match(await readFile(marker, 'utf8'), new RegExp(`^${boot} `), 'a mark of this boot again');
  assert.equal(await verifyStore(env.root), []);
  // A RUN on top reads the recovered layers.
  const out = join(env.work, 'machine-crash-out');
  await tsbuildOk(['--root', env.root, 'build', '--output', `type=local,dest=${out}`, await env.context(['FROM machine-crash', 'RUN wc -c < /r.bin > /size && cat /c > /c2'].join('\n'))]);
  assert.is((await readFile(join(out, 'size'), 'utf8')).trim(), '300000');
  assert.is(await readFile(join(out, 'c2'), 'utf8'), 'made-by-run\nfrom-context');
});

test.run();

/**
 * RUN cgroup limits (issue 06, item 3) as real builds with runc on the local busybox base:
 * `--pids-limit` stops a (bounded) fork bomb, `--memory` ends in a clear out-of-memory error,
 * `--cpus`, `--cpu-shares`, `--cpuset-cpus`, `--memory` and the default pids limit are what the
 * RUN sees in its cgroup, the limits are part of the cache key, bad values are usage errors, and
 * no RUN leaves its cgroup behind — not even when tsbuild is interrupted or killed.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { useBuildRoot } from '../helpers/build-root.js';
import { CLI, tsbuild, tsbuildOk } from '../helpers/cli.js';
import { cgroupLayout, leftoverMemoryCgroups, runCgroupDirs } from '../helpers/cgroups.js';

const test = suite('integration: RUN limits');
const env = useBuildRoot(test, 'run-limits');

/** Cgroup dirs the current test's RUNs printed: each must be gone once its build is over. */
let seen: string[] = [];
const note = (output: string): string => {
  seen.push(...runCgroupDirs(output));
  return output;
};
test.before.each(() => {
  seen = [];
});
test.after.each(() => {
  const left = [...seen.filter((d) => existsSync(d)), ...leftoverMemoryCgroups()];
  if (left.length) console.error(`[run-limits] cgroups left behind: ${left.join(' ')}`);
  assert.equal(left, [], 'no cgroup left behind');
});

const read = (p: string): string => readFileSync(p, 'utf8').trim();

async function build(ctx: string, name: string, extra: readonly string[] = []): Promise<{ out: string; stderr: string }> {
  const out = join(env.work, `${name}-out`);
  const r = await tsbuildOk(['--root', env.root, 'build', '--progress', 'plain', ...extra, '--output', `type=local,dest=${out}`, ctx]);
  note(r.stderr);
  return { out, stderr: r.stderr };
}

/** Prints the RUN's cgroups (for the leftover check), then its limits as `file=value` lines, v1 or v2 names. */
const PROBE = [
  'cat /proc/self/cgroup;',
  'for f in pids/pids.max pids.max cpu/cpu.cfs_quota_us cpu/cpu.cfs_period_us cpu.max cpu/cpu.shares cpu.weight memory/memory.limit_in_bytes memory.max cpuset/cpuset.cpus cpuset.cpus; do',
  '  [ -f /sys/fs/cgroup/$f ] && echo "${f#*/}=$(cat /sys/fs/cgroup/$f)";',
  'done > /limits;',
  'cat /proc/sys/kernel/random/uuid > /nonce',
].join(' \\\n');

function limitsIn(out: string): Record<string, string> {
  return Object.fromEntries(read(join(out, 'limits')).split('\n').map((l) => l.split('=') as [string, string]));
}

test('build --help lists every limit flag, one line each', async () => {
  const { stdout } = await tsbuildOk(['build', '--help']);
  for (const flag of ['--memory <size>', '--memory-swap <size>', '--cpu-shares <n>', '--cpus <n>', '--cpu-period <us>', '--cpu-quota <us>', '--cpuset-cpus <list>', '--cpuset-mems <list>', '--pids-limit <n>']) {
    const lines = stdout.split('\n').filter((l) => l.includes(flag));
    assert.is(lines.length, 1, `${flag} in:\n${stdout}`);
    assert.match(lines[0]!, new RegExp(`${flag.replace(/[<>]/g, '.')}\\s+\\S`), `${flag} has a description`);
  }
  assert.match(stdout, /default 2048; -1 or 0 for no limit/);
});

test('bad limit values are usage errors (exit 2) naming the flag', async () => {
  const ctx = await env.context('FROM busybox\nRUN true\n');
  const bad: [string[], RegExp][] = [
    [['--memory', 'lots'], /--memory "lots": expected a size/],
    [['--memory', '1m'], /--memory "1m": the minimum is 6m/],
    [['--memory-swap', '1g'], /--memory-swap "1g": .*needs --memory/],
    [['--memory', '512m', '--memory-swap', '256m'], /--memory-swap "256m": .*can not be below --memory/],
    [['--cpus', '-1'], /--cpus "-1": expected a number of CPUs/],
    [['--cpus', 'half'], /--cpus "half"/],
    [['--cpus', '0.5', '--cpu-quota', '50000'], /--cpus "0.5": .*can not be combined with --cpu-period or --cpu-quota/],
    [['--cpu-period', '10'], /--cpu-period "10": expected a whole number from 1000 to 1000000/],
    [['--cpu-quota', '1.5'], /--cpu-quota "1.5": expected a whole number/],
    [['--cpu-shares', '1'], /--cpu-shares "1": expected a whole number from 2 to 262144/],
    [['--cpuset-cpus', '3-1'], /--cpuset-cpus "3-1": the range 3-1 runs backwards/],
    [['--cpuset-mems', 'all'], /--cpuset-mems "all": expected a list/],
    [['--pids-limit', 'many'], /--pids-limit "many": expected a whole number/],
    [['--pids-limit', '-2'], /--pids-limit "-2": expected a whole number from -1 up/],
  ];
  for (const [flags, re] of bad) {
    const r = await tsbuild(['--root', env.root, 'build', ...flags, ctx]);
    assert.is(r.code, 2, `${flags.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
  }
  // Host-dependent checks come when a RUN starts: a clear build error naming the flag.
  const r = await tsbuild(['--root', env.root, 'build', '--cpus', '4096', ctx]);
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /--cpus 4096: only \d+ CPUs? (is|are) available here/);
  assert.match(r.stderr, 'Dockerfile:2');
});

test('the RUN sees its limits in its cgroup: the default pids limit, --cpus, --cpu-shares, --cpuset-cpus, --memory; same flags CACHED, others rerun', async () => {
  const ctx = await env.context(`FROM busybox\nRUN ${PROBE}\n`);
  const plain = await build(ctx, 'limits-default');
  const d = limitsIn(plain.out);
  assert.is(d['pids.max'], '2048', 'the default pids limit');
  if (cgroupLayout() !== 'v2') assert.is(d['cpu.cfs_quota_us'], '-1', 'no CPU quota without --cpus');

  const flags = ['--cpus', '0.5', '--cpu-shares', '512', '--cpuset-cpus', '0', '--memory', '64m', '--pids-limit', '100'];
  const limited = await build(ctx, 'limits-set', flags);
  const l = limitsIn(limited.out);
  if (cgroupLayout() === 'v2') {
    assert.is(l['cpu.max'], '50000 100000');
    assert.is(l['memory.max'], String(64 << 20));
  } else {
    assert.is(l['cpu.cfs_quota_us'], '50000');
    assert.is(l['cpu.cfs_period_us'], '100000');
    assert.is(l['cpu.shares'], '512');
    assert.is(l['memory.limit_in_bytes'], String(64 << 20));
  }
  assert.is(l['cpuset.cpus'], '0');
  assert.is(l['pids.max'], '100');
  assert.is.not(read(join(limited.out, 'nonce')), read(join(plain.out, 'nonce')), 'limits are in the cache key: the RUN ran again');

  const same = await build(ctx, 'limits-same', flags);
  assert.is(read(join(same.out, 'nonce')), read(join(limited.out, 'nonce')), 'the same limits: CACHED');
  const other = await build(ctx, 'limits-other', flags.map((f) => (f === '64m' ? '96m' : f)));
  assert.is.not(read(join(other.out, 'nonce')), read(join(limited.out, 'nonce')), 'another --memory reruns the RUN');
  assert.is(limitsIn(other.out)['memory.limit_in_bytes'] ?? limitsIn(other.out)['memory.max'], String(96 << 20));

  const lifted = await build(ctx, 'limits-lifted', ['--pids-limit', '-1']);
  assert.is(limitsIn(lifted.out)['pids.max'], 'max', '--pids-limit -1 lifts the default');
  const zero = await build(ctx, 'limits-zero', ['--pids-limit', '0']);
  assert.is(read(join(zero.out, 'nonce')), read(join(lifted.out, 'nonce')), '0 and -1 are the same setting');
});

/** Spawns up to 500 background sleeps, printing the count after each: bounded, whatever the limit. */
const FORKS = 'RUN cat /proc/self/cgroup; n=0; while [ $n -lt 500 ]; do sleep 60 & n=$((n+1)); echo "spawned $n"; done; echo "all $n spawned"';

test('--pids-limit 50 stops a fork bomb at 50 processes; the build fails cleanly and fast', async () => {
  const ctx = await env.context(`FROM busybox\n${FORKS}\n`);
  const started = Date.now();
  const r = await tsbuild(['--root', env.root, 'build', '--progress', 'plain', '--pids-limit', '50', ctx]);
  note(r.stderr);
  assert.is(r.code, 1, r.stderr);
  const counts = [...r.stderr.matchAll(/spawned (\d+)/g)].map((m) => Number(m[1]));
  const most = Math.max(0, ...counts);
  // The shell itself is one of the 50.
  assert.ok(most > 10 && most < 50, `spawned ${most} before fork failed:\n${r.stderr.slice(-2000)}`);
  assert.not.match(r.stderr, 'all 500 spawned');
  assert.match(r.stderr, 'Dockerfile:2');
  assert.ok(Date.now() - started < 30_000, 'the sleeps were killed with the RUN, not waited for');

  // The same loop under the default limit (2048) completes: the limit is what stopped it.
  const ok = await tsbuild(['--root', env.root, 'build', '--progress', 'plain', ctx]);
  note(ok.stderr);
  assert.is(ok.code, 0, ok.stderr.slice(-2000));
  assert.match(ok.stderr, 'all 500 spawned');
});

test('--memory 32m: a RUN that allocates more is killed with a clear out-of-memory error', async () => {
  // tail keeps the whole newline-free "last line" in memory: 100 MiB of RSS.
  const ctx = await env.context('FROM busybox\nRUN cat /proc/self/cgroup; head -c 100m /dev/zero | tail >/dev/null\n');
  const r = await tsbuild(['--root', env.root, 'build', '--progress', 'plain', '--memory', '32m', ctx]);
  note(r.stderr);
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, 'RUN was killed: out of memory (--memory 32m)');
  assert.match(r.stderr, 'Dockerfile:2');
  assert.not.match(r.stderr, 'exit code: 137');

  // Room enough: the same RUN passes.
  const roomy = await tsbuild(['--root', env.root, 'build', '--progress', 'plain', '--memory', '512m', ctx]);
  note(roomy.stderr);
  assert.is(roomy.code, 0, roomy.stderr);

  // A killed child the command survives: a warning, not a failure. The pipeline runs in a
  // subshell that volunteers for the OOM killer (oom_score_adj 1000), so a second kill under
  // pressure can't take the outer shell instead (that made this case flaky).
  const survive = await env.context('FROM busybox\nRUN cat /proc/self/cgroup; (echo 1000 > /proc/self/oom_score_adj; head -c 100m /dev/zero | tail | wc -c); echo survived\n');
  const w = await tsbuild(['--root', env.root, 'build', '--progress', 'plain', '--memory', '32m', survive]);
  note(w.stderr);
  assert.is(w.code, 0, w.stderr);
  assert.match(w.stderr, 'a process of this RUN was killed: out of memory (--memory 32m)');
});

/** SIGKILL does not reach tsbuild's children: wait until the orphaned `runc run` naming the root is gone. */
async function orphansGone(root: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const busy = readdirSync('/proc').filter((pid) => /^\d+$/.test(pid) && Number(pid) !== process.pid && (tryRead(`/proc/${pid}/cmdline`) ?? '').includes(root));
    if (busy.length === 0) return;
    if (Date.now() > deadline) throw new Error(`processes of the killed build still running: ${busy.join(' ')}`);
    await sleep(100);
  }
}

function tryRead(p: string): string | undefined {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return undefined;
  }
}

/** Starts a build whose RUN prints its cgroups and then sleeps; resolves once they were printed. */
async function startSleepingBuild(ctx: string, extra: readonly string[]) {
  const child = spawn(process.execPath, [CLI, '--root', env.root, 'build', '--progress', 'plain', ...extra, ctx], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b) => (stderr += b));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const deadline = Date.now() + 60_000;
  while (runCgroupDirs(stderr).length === 0) {
    if (Date.now() > deadline) throw new Error(`the RUN never printed its cgroup:\n${stderr}`);
    await sleep(50);
  }
  return { child, exited, stderr: () => stderr };
}

test('an interrupted build removes the RUN cgroup at once; a killed one leaves it to the next build', async () => {
  const ctx = await env.context('FROM busybox\nRUN cat /proc/self/cgroup; sleep 5\n');
  // Ctrl-C: tsbuild kills the container and deletes it.
  const int = await startSleepingBuild(ctx, ['--memory', '64m']);
  const dirs = runCgroupDirs(note(int.stderr()));
  assert.ok(dirs.every((d) => existsSync(d)), 'the cgroup exists while the RUN runs');
  int.child.kill('SIGINT');
  assert.is(await int.exited, 130);
  assert.equal(dirs.filter((d) => existsSync(d)), [], 'interrupted: no cgroup left');

  // SIGKILL: the orphaned runc finishes the RUN and (with --memory) keeps the stopped container
  // for its OOM check; the next build's clean-up deletes it, cgroup and all.
  const killed = await startSleepingBuild(ctx, ['--memory', '64m']);
  const kdirs = runCgroupDirs(note(killed.stderr()));
  killed.child.kill('SIGKILL');
  await killed.exited;
  await orphansGone(env.root);
  const kept = kdirs.every((d) => existsSync(d));
  // Before asserting: the clean-up must happen whatever the outcome, or the killed build's mount stays.
  await build(await env.context('FROM busybox\nRUN true\n'), 'after-kill');
  assert.ok(kept, 'the stopped container kept its cgroup until then');
  assert.equal(kdirs.filter((d) => existsSync(d)), [], 'killed: the next build removed the cgroup');
});

test.run();

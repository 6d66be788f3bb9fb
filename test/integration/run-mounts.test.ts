/**
 * RUN --mount (issue 02 §5) as real builds on the local busybox base: cache (persisted under
 * the root, shared between builds, uid/gid/mode, never in a layer), bind (context and stage,
 * read-only, rw writes discarded, the bound files in the cache key), tmpfs, secret (file and env;
 * the secret's bytes are searched in every layer, config, index, cache record and log), ssh
 * (a unix socket made by the test), --network=none and --security=insecure with --allow, and
 * the seccomp filter every other RUN has.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { createServer } from 'node:net';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { join } from 'node:path';
import { useBuildRoot } from '../helpers/build-root.js';
import { tsbuild, tsbuildOk } from '../helpers/cli.js';

const test = suite('integration: RUN --mount');
const env = useBuildRoot(test, 'run-mounts');

async function build(ctx: string, name: string, extra: readonly string[] = [], runEnv: NodeJS.ProcessEnv = {}): Promise<{ out: string; stderr: string }> {
  const out = join(env.work, `${name}-out`);
  const r = await tsbuildOk(['--root', env.root, 'build', '--progress', 'plain', ...extra, '--output', `type=local,dest=${out}`, ctx], { env: runEnv });
  return { out, stderr: r.stderr };
}

const read = (p: string): string => readFileSync(p, 'utf8').trim();

test('type=cache persists between builds under <root>/cache/mounts and stays out of the layer', async () => {
  const df = (n: number): string =>
    [
      'FROM busybox',
      `RUN --mount=type=cache,target=/var/cache/app echo run${n} >> /var/cache/app/log && cp /var/cache/app/log /seen`,
      'RUN --mount=type=cache,id=owned,target=/c2,uid=1000,gid=1001,mode=0700 stat -c "%u %g %a" /c2 > /c2-stat',
    ].join('\n');
  const first = await build(await env.context(df(1)), 'cache-1');
  assert.is(read(join(first.out, 'seen')), 'run1');
  assert.is(read(join(first.out, 'c2-stat')), '1000 1001 700');
  assert.not.ok(existsSync(join(first.out, 'var/cache/app/log')), 'cache content is not in the image');
  assert.not.ok(existsSync(join(first.out, 'c2')), 'a mount point made for the RUN does not leak');
  const second = await build(await env.context(df(2)), 'cache-2');
  assert.is(read(join(second.out, 'seen')), 'run1\nrun2', 'the second build sees the first one\'s cache');
  assert.ok(readdirSync(join(env.root, 'cache', 'mounts')).filter((n) => !n.startsWith('.')).length >= 2);
  await tsbuildOk(['--root', env.root, 'prune', '--all']);
  assert.not.ok(existsSync(join(env.root, 'cache', 'mounts')), 'prune --all drops cache mounts');
});

test('type=cache sharing=locked and private, and from= seeds a new cache', async () => {
  const ctx = await env.context(
    [
      'FROM busybox AS seed',
      'RUN mkdir /s && echo seeded > /s/file',
      'FROM busybox',
      'RUN --mount=type=cache,id=seeded-cache,from=seed,source=/s,target=/c cat /c/file > /got',
      'RUN --mount=type=cache,id=lk,sharing=locked,target=/l echo a > /l/a && cat /l/a > /locked',
      'RUN --mount=type=cache,id=pv,sharing=private,target=/p echo b > /p/b && cat /p/b > /private',
    ].join('\n'),
  );
  const { out } = await build(ctx, 'cache-sharing');
  assert.is(read(join(out, 'got')), 'seeded');
  assert.is(read(join(out, 'locked')), 'a');
  assert.is(read(join(out, 'private')), 'b');
});

test('type=cache sharing=locked is one RUN at a time across tsbuild processes on one root', async () => {
  // Each RUN marks the cache busy for a second; a second RUN seeing the mark fails its build.
  const run = (who: string) =>
    `RUN --mount=type=cache,id=machine-wide,sharing=locked,target=/l sh -c 'if [ -e /l/busy ]; then echo OVERLAP; exit 1; fi; touch /l/busy; echo ${who} >> /l/log; sleep 1; rm /l/busy'`;
  const a = await env.context(`FROM busybox\n${run('a')}\n`);
  const b = await env.context(`FROM busybox\n${run('b')}\n`);
  const [ra, rb] = await Promise.all([a, b].map((ctx) => tsbuild(['--root', env.root, 'build', '--no-cache', ctx])));
  assert.is(ra!.code, 0, ra!.stderr);
  assert.is(rb!.code, 0, rb!.stderr);
  const log = await env.context(`FROM busybox\nRUN --mount=type=cache,id=machine-wide,sharing=locked,target=/l sort /l/log > /log\n`);
  const { out } = await build(log, 'locked-log');
  assert.is(read(join(out, 'log')), 'a\nb', 'both RUNs used the one cache, one after the other');
});

test('type=bind from the context (read-only, rw discarded) and from a stage; bound files are in the cache key', async () => {
  const df = [
    'FROM busybox AS other',
    'RUN echo from-stage > /st.txt',
    'FROM busybox',
    'RUN --mount=type=bind,source=data,target=/mnt cat /mnt/a > /a-copy && if touch /mnt/x 2>/dev/null; then echo writable > /ro; else echo ro > /ro; fi',
    'RUN --mount=type=bind,target=/src,rw touch /src/new && ls /src > /listing',
    'RUN --mount=type=bind,from=other,source=/st.txt,target=/m/st cat /m/st > /from-stage',
  ].join('\n');
  const ctx = await env.context(df, { 'data/a': 'one\n' });
  const { out } = await build(ctx, 'bind-1');
  assert.is(read(join(out, 'a-copy')), 'one');
  assert.is(read(join(out, 'ro')), 'ro');
  assert.match(read(join(out, 'listing')), 'new');
  assert.not.ok(existsSync(join(ctx, 'new')), 'rw writes never reach the context');
  assert.not.ok(existsSync(join(out, 'src')), 'nor the image');
  assert.not.ok(existsSync(join(out, 'mnt')));
  assert.is(read(join(out, 'from-stage')), 'from-stage');
  await writeFile(join(ctx, 'data/a'), 'two\n');
  const again = await build(ctx, 'bind-2');
  assert.is(read(join(again.out, 'a-copy')), 'two', 'changing a bound file reruns the step');
});

test('type=bind from the context hides what .dockerignore excludes', async () => {
  const ctx = await env.context(['FROM busybox', 'RUN --mount=type=bind,target=/c ls /c > /listing'].join('\n'), {
    '.dockerignore': 'secret.env\n',
    'secret.env': 'x',
    'kept.txt': 'y',
  });
  const { out } = await build(ctx, 'bind-ignore');
  const listing = read(join(out, 'listing')).split('\n');
  assert.ok(listing.includes('kept.txt'));
  assert.not.ok(listing.includes('secret.env'));
});

test('type=tmpfs is empty, sized, and gone afterwards', async () => {
  const ctx = await env.context(['FROM busybox', 'RUN --mount=type=tmpfs,target=/t,size=2m echo x > /t/f && df -k /t | tail -n 1 | awk \'{print $2}\' > /t-size'].join('\n'));
  const { out } = await build(ctx, 'tmpfs');
  assert.is(read(join(out, 't-size')), '2048');
  assert.not.ok(existsSync(join(out, 't')));
});

const SECRET = 'S3cr3t-tsbuild-d1ff3r3nt-7f2a9c';
const ENV_SECRET = 'EnvS3cr3t-tsbuild-44d1b0e8';
const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

test('type=secret from a file and from env: usable in RUN, absent from layers, configs, cache and logs', async () => {
  const secretFile = join(env.work, 'secret.txt');
  await writeFile(secretFile, SECRET);
  const df = [
    'FROM busybox',
    'RUN --mount=type=secret,id=tok sha256sum /run/secrets/tok | cut -d" " -f1 > /file-sum && stat -c "%a %u %g" /run/secrets/tok > /file-stat',
    'RUN --mount=type=secret,id=tok,target=/etc/tok,mode=0440,uid=7,gid=8 stat -c "%a %u %g" /etc/tok > /target-stat',
    'RUN --mount=type=secret,id=envtok,env=TOK printf %s "$TOK" | sha256sum | cut -d" " -f1 > /env-sum',
    'RUN --mount=type=secret,id=absent ls /run/secrets > /absent-listing 2>&1 || echo none > /absent-listing',
  ].join('\n');
  const ctx = await env.context(df);
  const layout = join(env.work, 'secret-layout');
  const r = await tsbuildOk(
    ['--root', env.root, 'build', '--progress', 'rawjson', '--secret', `id=tok,src=${secretFile}`, '--secret', 'id=envtok,env=MY_TOKEN', '-t', 'secret-img', '--output', `type=oci,dest=${layout},tar=false`, ctx],
    { env: { MY_TOKEN: ENV_SECRET } },
  );
  const local = await build(ctx, 'secret-local', ['--secret', `id=tok,src=${secretFile}`, '--secret', 'id=envtok,env=MY_TOKEN'], { MY_TOKEN: ENV_SECRET });
  assert.is(read(join(local.out, 'file-sum')), sha(SECRET));
  assert.is(read(join(local.out, 'env-sum')), sha(ENV_SECRET));
  assert.is(read(join(local.out, 'file-stat')), '400 0 0');
  assert.is(read(join(local.out, 'target-stat')), '440 7 8');
  assert.is(read(join(local.out, 'absent-listing')), 'none', 'an optional secret that was not given is not mounted');
  assert.not.ok(existsSync(join(local.out, 'run/secrets')), 'no mount point left in the image');
  assert.not.ok(existsSync(join(local.out, 'etc/tok')));
  // Every blob of the exported layout (layers unzipped), everything under the root, and the logs.
  const needles = [SECRET, ENV_SECRET].map((s) => Buffer.from(s));
  const hits: string[] = [];
  const scan = (what: string, data: Buffer): void => {
    for (const n of needles) if (data.includes(n)) hits.push(`${what} holds ${n.toString()}`);
  };
  for (const f of walk(layout)) {
    const data = readFileSync(f);
    scan(f, data);
    if (data[0] === 0x1f && data[1] === 0x8b) scan(`${f} (gunzipped)`, gunzipSync(data));
  }
  for (const f of walk(env.root)) {
    const data = readFileSync(f);
    scan(f, data);
    if (data[0] === 0x1f && data[1] === 0x8b) scan(`${f} (gunzipped)`, gunzipSync(data));
  }
  scan('build log', Buffer.from(r.stderr + r.stdout + local.stderr));
  const hist = await tsbuildOk(['--root', env.root, 'history', 'secret-img']);
  scan('history', Buffer.from(hist.stdout));
  const insp = await tsbuildOk(['--root', env.root, 'inspect', 'secret-img']);
  scan('inspect', Buffer.from(insp.stdout));
  assert.equal(hits, []);
});

test('a changed secret does not change the cache key; a changed mount definition does', async () => {
  const secretFile = join(env.work, 'rotating.txt');
  const ctx = await env.context(['FROM busybox', 'RUN --mount=type=secret,id=rot cat /proc/sys/kernel/random/uuid > /stamp'].join('\n'));
  await writeFile(secretFile, 'first-value');
  const a = await build(ctx, 'rot-1', ['--secret', `id=rot,src=${secretFile}`]);
  await writeFile(secretFile, 'second-value');
  const b = await build(ctx, 'rot-2', ['--secret', `id=rot,src=${secretFile}`]);
  assert.is(read(join(b.out, 'stamp')), read(join(a.out, 'stamp')), 'the step was cached');
  await writeFile(join(ctx, 'Dockerfile'), ['FROM busybox', 'RUN --mount=type=secret,id=rot,mode=0444 cat /proc/sys/kernel/random/uuid > /stamp'].join('\n'));
  const c = await build(ctx, 'rot-3', ['--secret', `id=rot,src=${secretFile}`]);
  assert.is.not(read(join(c.out, 'stamp')), read(join(a.out, 'stamp')), 'a different mount reran');
});

test('type=secret,required without --secret fails naming the line', async () => {
  const ctx = await env.context(['FROM busybox', 'RUN --mount=type=secret,id=must,required true'].join('\n'));
  const r = await tsbuild(['--root', env.root, 'build', ctx]);
  assert.is(r.code, 1);
  assert.match(r.stderr, 'secret must: not found'); // BuildKit's words
  assert.match(r.stderr, 'Dockerfile:2');
});

test('type=ssh forwards the agent socket given with --ssh', async () => {
  const sock = join(env.work, 'agent.sock');
  const server = createServer((c) => c.end());
  await new Promise<void>((res) => server.listen(sock, res));
  try {
    const ctx = await env.context(['FROM busybox', 'RUN --mount=type=ssh test -S "$SSH_AUTH_SOCK" && echo "$SSH_AUTH_SOCK" > /ssh-ok'].join('\n'));
    const { out } = await build(ctx, 'ssh', ['--ssh', `default=${sock}`]);
    assert.is(read(join(out, 'ssh-ok')), '/run/buildkit/ssh_agent.0');
    assert.not.ok(existsSync(join(out, 'run/buildkit')));
  } finally {
    await new Promise((res) => server.close(res));
  }
});

test('--network=none has only lo; --security=insecure needs --allow security.insecure', async () => {
  const ctx = await env.context(
    ['FROM busybox', 'RUN --network=none ls /sys/class/net > /nets', 'RUN --security=insecure grep CapEff /proc/self/status > /caps'].join('\n'),
  );
  const refused = await tsbuild(['--root', env.root, 'build', ctx]);
  assert.is(refused.code, 1);
  assert.match(refused.stderr, 'security.insecure');
  assert.match(refused.stderr, 'Dockerfile:3');
  const { out } = await build(ctx, 'insecure', ['--allow', 'security.insecure']);
  assert.is(read(join(out, 'nets')), 'lo');
  const eff = BigInt(`0x${read(join(out, 'caps')).split(/\s+/)[1]}`);
  assert.ok((eff & (1n << 21n)) !== 0n, 'CAP_SYS_ADMIN granted');
});

test('build --network none is the default of RUN (RUN --network=host still overrides it); --add-host adds /etc/hosts entries', async () => {
  const ctx = await env.context(['FROM busybox', 'RUN ls /sys/class/net > /nets-default', 'RUN --network=host ls /sys/class/net > /nets-host', 'RUN grep -E "db|v6" /etc/hosts > /hosts || true'].join('\n'));
  const { out } = await build(ctx, 'network-none', ['--network', 'none', '--allow', 'network.host', '--add-host', 'db:10.1.2.3', '--add-host', 'v6=[fd00::1]']);
  assert.is(read(join(out, 'nets-default')), 'lo');
  assert.ok(read(join(out, 'nets-host')).split('\n').length > 1, 'the host\'s interfaces');
  assert.is(read(join(out, 'hosts')), '10.1.2.3\tdb\nfd00::1\tv6');
  const again = await build(ctx, 'network-none-2', ['--network', 'none', '--allow', 'network.host', '--add-host', 'db:10.9.9.9']);
  assert.is(read(join(again.out, 'hosts')), '10.9.9.9\tdb', 'another host entry is another cache key, never a stale hit');
  const bad = await tsbuild(['--root', env.root, 'build', '--add-host', 'db', ctx]);
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /--add-host "db": expected HOST:IP/);
});

test('--ulimit and --shm-size reach RUN and are part of its key; bad values are usage errors', async () => {
  const ctx = await env.context(['FROM busybox', "RUN sh -c 'ulimit -Sn; ulimit -Hn; df -k /dev/shm | tail -1' > /limits"].join('\n'));
  const limits = async (name: string, extra: string[]) => read(join((await build(ctx, name, extra)).out, 'limits')).split('\n');
  const [soft, hard, shm] = await limits('ulimit-1', ['--ulimit', 'nofile=512:1024', '--shm-size', '128m']);
  assert.equal([soft, hard], ['512', '1024']);
  assert.match(shm!, /\s131072\s/, shm);
  const again = await limits('ulimit-2', ['--ulimit', 'nofile=256']);
  assert.equal(again.slice(0, 2), ['256', '256'], 'other limits are another cache key, never a stale hit');
  assert.match(again[2]!, /\s65536\s/, 'the default /dev/shm is 64 MiB');
  const bad: [string, string, RegExp][] = [['--ulimit', 'nofile=2:1', /soft limit is above/], ['--ulimit', 'bogus=1', /unknown type "bogus"/], ['--shm-size', 'lots', /expected a size/]];
  for (const [flag, value, re] of bad) {
    const r = await tsbuild(['--root', env.root, 'build', flag, value, ctx]);
    assert.is(r.code, 2, r.stderr);
    assert.match(r.stderr, re);
  }
});

test('RUN is seccomp-filtered: no new user namespaces, keyrings or mounts; --security=insecure is unconfined', async () => {
  const probe = (prefix: string, file: string) =>
    `RUN ${prefix}sh -c 'grep ^Seccomp: /proc/self/status; unshare -U true && echo userns=yes || echo userns=no; unshare -m true && echo mountns=yes || echo mountns=no' > /${file} 2>/dev/null`;
  const ctx = await env.context(['FROM busybox', probe('', 'default'), probe('--security=insecure ', 'insecure')].join('\n'));
  const { out } = await build(ctx, 'seccomp', ['--allow', 'security.insecure']);
  assert.is(read(join(out, 'default')), 'Seccomp:\t2\nuserns=no\nmountns=no', 'filter mode 2, namespaces refused');
  assert.is(read(join(out, 'insecure')), 'Seccomp:\t0\nuserns=yes\nmountns=yes');
});

test('a bad --mount names the line', async () => {
  const ctx = await env.context(['FROM busybox', 'RUN --mount=type=bogus,target=/x true'].join('\n'));
  const r = await tsbuild(['--root', env.root, 'build', ctx]);
  assert.is(r.code, 1);
  assert.match(r.stderr, 'unsupported mount type "bogus"');
  assert.match(r.stderr, 'Dockerfile:2');
});

/** Regular files below `dir` (symlinks not followed). */
function walk(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p));
    else if (e.isFile() && statSync(p).size < 64 * 1024 * 1024) out.push(p);
  }
  return out;
}

test.run();

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { lstat, mkdir, readFile, readlink, stat, symlink, link, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { useBuildRoot } from '../../helpers/build-root.js';
import { tsbuild } from '../../helpers/cli.js';
import { startHttpFileServer, type HttpFileServer } from '../../helpers/http-file-server.js';
import { exists, localOut, tarOf } from './files-helpers.js';

/** Ports of BuildKit's frontend/dockerfile/dockerfile_add_test.go. */
const test = suite('buildkit-port: files / ADD');
const env = useBuildRoot(test, 'bk-files-add');
let http: HttpFileServer;

test.before(async () => {
  http = await startHttpFileServer();
});
test.after(async () => {
  await http.close();
});

/** The Go test's archives: `t.tar` (one file `foo` = content0) and its gzip, made once (gzip stamps the time). */
let archives: { tar: Buffer; tgz: Buffer } | undefined;

/** A context dir with `dockerfile`, t.tar and t.tar.gz. */
async function archiveContext(dockerfile: string): Promise<{ dir: string; tar: Buffer; tgz: Buffer }> {
  const dir = await env.context(dockerfile);
  if (!archives) {
    const stage = `${dir}-stage`;
    await mkdir(stage, { recursive: true });
    await writeFile(join(stage, 'foo'), 'content0', { mode: 0o644 });
    archives = { tar: tarOf(stage, ['foo'], join(stage, 't.tar')), tgz: tarOf(stage, ['foo'], join(stage, 't.tar.gz'), { gzip: true }) };
  }
  await writeFile(join(dir, 't.tar'), archives.tar);
  await writeFile(join(dir, 't.tar.gz'), archives.tgz);
  return { dir, ...archives };
}

test('testDockerfileADDFromURL: named by the URL path, `/` gives __unnamed__ with Last-Modified as mtime; a rebuild only revalidates', async () => {
  const modTime = new Date(Math.floor(Date.now() / 1000 - 86400) * 1000);
  http.set('/foo', { body: 'content1', etag: '"e1"' });
  http.set('/', { body: 'content2', etag: '"e2"', lastModified: modTime });
  let dir = await env.context(`FROM scratch\nADD ${http.base}/foo /dest/\n`);
  let out = await localOut(env, dir);
  assert.is(await readFile(join(out, 'dest/foo'), 'utf8'), 'content1');
  await localOut(env, dir);
  const fooReqs = http.requestsFor('/foo');
  assert.is(fooReqs.length, 2, 'one download, then one revalidation');
  assert.is(fooReqs[1]!.bytes, 0, 'the rebuild downloads nothing');

  dir = await env.context(`FROM scratch\nADD ${http.base}/ /dest/\n`);
  out = await localOut(env, dir);
  const dest = join(out, 'dest/__unnamed__');
  assert.is(await readFile(dest, 'utf8'), 'content2');
  assert.is((await stat(dest)).mtime.toUTCString(), modTime.toUTCString());
});

test('testDockerfileAddArchive: tar and tar.gz extract, --unpack=false and COPY do not, a URL only with --unpack=true', async () => {
  const { tgz } = await archiveContext('');
  http.set('/t.tar.gz', { body: tgz, etag: '"t"' });
  const cases: [string, (out: string) => Promise<void>][] = [
    ['ADD t.tar /', async (out) => assert.is(await readFile(join(out, 'foo'), 'utf8'), 'content0')],
    ['ADD t.tar.gz /', async (out) => assert.is(await readFile(join(out, 'foo'), 'utf8'), 'content0')],
    ['ADD --unpack=false t.tar.gz /', async (out) => {
      assert.not.ok(await exists(join(out, 'foo')));
      assert.equal(await readFile(join(out, 't.tar.gz')), tgz);
    }],
    ['COPY t.tar.gz /', async (out) => assert.equal(await readFile(join(out, 't.tar.gz')), tgz)],
    [`ADD ${http.base}/t.tar.gz /`, async (out) => assert.equal(await readFile(join(out, 't.tar.gz')), tgz)],
    [`ADD --unpack=true ${http.base}/t.tar.gz /dest/`, async (out) => assert.is(await readFile(join(out, 'dest/foo'), 'utf8'), 'content0')],
    // moby/buildkit#386: a remote archive keeps the name the destination gives it.
    [`ADD ${http.base}/t.tar.gz /newname.tar.gz`, async (out) => assert.equal(await readFile(join(out, 'newname.tar.gz')), tgz)],
  ];
  for (const [line, check] of cases) {
    const { dir } = await archiveContext(`FROM scratch\n${line}\n`);
    await check(await localOut(env, dir));
  }
});

test('testDockerfileAddArchiveWithImpliedParentDir: etc/dnf/ in the archive without etc/', async () => {
  const dir = await env.context('FROM scratch\nADD t.tar.gz /\n');
  const stage = `${dir}-stage`;
  await mkdir(join(stage, 'etc/dnf'), { recursive: true });
  await writeFile(join(stage, 'etc/dnf/dnf.conf'), 'content0');
  tarOf(stage, ['etc/dnf/', 'etc/dnf/dnf.conf'], join(dir, 't.tar.gz'), { gzip: true });
  const out = await localOut(env, dir);
  assert.is(await readFile(join(out, 'etc/dnf/dnf.conf'), 'utf8'), 'content0');
});

test('testDockerfileAddArchiveThroughAbsoluteSymlink: var/run -> /run from an earlier layer, a hardlink below it', async () => {
  const dir = await env.context('FROM scratch\nADD rootfs.tar /\nADD payload.tar /\n');
  const s1 = `${dir}-s1`;
  await mkdir(join(s1, 'run'), { recursive: true });
  await mkdir(join(s1, 'var'));
  await symlink('/run', join(s1, 'var/run'));
  tarOf(s1, ['run/', 'var/', 'var/run'], join(dir, 'rootfs.tar'));
  const s2 = `${dir}-s2`;
  const git = 'var/run/act/actions/broad/.git';
  await mkdir(join(s2, git), { recursive: true });
  await writeFile(join(s2, git, 'HEAD'), 'ref: refs/heads/main\n');
  await link(join(s2, git, 'HEAD'), join(s2, git, 'HEAD.link'));
  // Parent directories explicit, var/ and var/run/ left out, as the Go test's archive.
  tarOf(s2, ['var/run/act/', 'var/run/act/actions/', 'var/run/act/actions/broad/', `${git}/`, `${git}/HEAD`, `${git}/HEAD.link`], join(dir, 'payload.tar'));
  const out = await localOut(env, dir);
  const head = join(out, 'run/act/actions/broad/.git/HEAD');
  assert.is(await readFile(head, 'utf8'), 'ref: refs/heads/main\n');
  assert.is(await readFile(`${head}.link`, 'utf8'), 'ref: refs/heads/main\n');
  assert.is((await stat(head)).ino, (await stat(`${head}.link`)).ino, 'one inode');
  assert.is(await readlink(join(out, 'var/run')), '/run', 'the symlink stays');
});

test('testDockerfileAddChownArchive: --chown owns the extracted entries and the destination', async () => {
  const { dir } = await archiveContext('FROM scratch\nADD --chown=100:200 t.tar /out/\n');
  const out = await localOut(env, dir);
  assert.is(await readFile(join(out, 'out/foo'), 'utf8'), 'content0');
  for (const p of ['out/foo', 'out']) {
    const st = await lstat(join(out, p));
    assert.equal([st.uid, st.gid], [100, 200], p);
  }
});

test('testDockerfileAddArchiveWildcard: ADD *.tar extracts each', async () => {
  const dir = await env.context('FROM scratch\nADD *.tar /dest\n');
  const stage = `${dir}-stage`;
  await mkdir(stage);
  await writeFile(join(stage, 'foo'), 'content0');
  await writeFile(join(stage, 'bar'), 'content1');
  tarOf(stage, ['foo'], join(dir, 't.tar'));
  tarOf(stage, ['bar'], join(dir, 'b.tar'));
  const out = await localOut(env, dir);
  assert.is(await readFile(join(out, 'dest/foo'), 'utf8'), 'content0');
  assert.is(await readFile(join(out, 'dest/bar'), 'utf8'), 'content1');
});

test('testDockerfileAddChownExpand: --chown=${owner}:${group} from ENV and a build arg', async () => {
  const dir = await env.context('FROM busybox\nARG group\nENV owner 1000\nADD --chown=${owner}:${group} foo /\nRUN [ "$(stat -c "%u %G" /foo)" == "1000 nobody" ]\n', { foo: 'foo-contents' });
  const r = await tsbuild(['--root', env.root, 'build', '--build-arg', 'group=nobody', dir]);
  assert.is(r.code, 0, r.stderr);
});

test('testAddURLChmod: --chmod on a URL, also from a build arg', async () => {
  http.set('/chmod', { body: 'content1' });
  const u = `${http.base}/chmod`;
  const dir = await env.context(`FROM busybox AS build
ADD --chmod=644 ${u} /tmp/foo1
ADD --chmod=755 ${u} /tmp/foo2
ADD --chmod=0413 ${u} /tmp/foo3
ARG mode
ADD --chmod=\${mode} ${u} /tmp/foo4
RUN stat -c "%04a" /tmp/foo1 >> /dest && stat -c "%04a" /tmp/foo2 >> /dest && stat -c "%04a" /tmp/foo3 >> /dest && stat -c "%04a" /tmp/foo4 >> /dest
FROM scratch
COPY --from=build /dest /dest
`);
  const out = await localOut(env, dir, ['--build-arg', 'mode=400']);
  assert.is(await readFile(join(out, 'dest'), 'utf8'), '0644\n0755\n0413\n0400\n');
});

test('testAddInvalidChmod: not octal, or above 07777', async () => {
  for (const mode of ['64a', '10000']) {
    const dir = await env.context(`FROM scratch\nADD --chmod=${mode} foo /\n`, { foo: 'foo-contents' });
    const r = await tsbuild(['--root', env.root, 'build', dir]);
    assert.is(r.code, 1, r.stderr);
    assert.ok(r.stderr.includes(`invalid chmod parameter: '${mode}'. it should be octal string and between 0 and 07777`), r.stderr);
  }
});

test('testAddChecksum: a matching digest, one from ENV; a mismatch, unsupported or malformed digests and a local source fail', async () => {
  http.set('/sum', { body: 'content1' });
  const u = `${http.base}/sum`;
  const good = `sha256:${createHash('sha256').update('content1').digest('hex')}`;
  const ok = [`FROM scratch\nADD --checksum=${good} ${u} /tmp/foo\n`, `FROM scratch\nENV DIGEST=${good}\nENV LINK=${u}\nADD --checksum=\${DIGEST} \${LINK} /tmp/foo\n`];
  for (const df of ok) {
    const r = await tsbuild(['--root', env.root, 'build', await env.context(df)]);
    assert.is(r.code, 0, r.stderr);
  }
  const bad = [
    `sha256:${createHash('sha256').update('').digest('hex')} ${u}`,
    `md5:7e55db001d319a94b0b713529a756623 ${u}`,
    `unknown:${good.slice(7)} ${u}`,
    `${good.slice(7)} ${u}`,
    `sha256:${createHash('sha256').update('local file').digest('hex')} foo`,
  ];
  for (const b of bad) {
    const r = await tsbuild(['--root', env.root, 'build', await env.context(`FROM scratch\nADD --checksum=${b} /tmp/foo\n`, { foo: 'local file' })]);
    assert.is(r.code, 1, `${b}: ${r.stderr}`);
    assert.match(r.stderr, /Dockerfile:2/);
  }
});

test.run();

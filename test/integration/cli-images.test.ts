import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { useBuildRoot } from '../helpers/build-root.js';
import { CLI, tsbuild, tsbuildOk } from '../helpers/cli.js';
import { mountsUnder } from '../helpers/mounts.js';
import { runcContainers, tool } from '../helpers/run-tool.js';
import { verifyStore } from '../helpers/verify-store.js';
import { diffTrees, snapshotTree } from '../helpers/tree-compare.js';

/** Image management verbs on real images: images, tag, rmi, inspect, history, save, load, run. */
const test = suite('integration: image management');
const env = useBuildRoot(test, 'images');
const at = (root: string) => ['--root', root];

test.before(async () => {
  const parent = await env.context('FROM busybox\nRUN echo p > /p\nENV P=1\n');
  await tsbuildOk([...at(env.root), 'build', '-t', 'parent', parent]);
  const child = await env.context('FROM parent\nRUN echo c > /c\nCMD ["cat", "/p", "/c"]\n');
  await tsbuildOk([...at(env.root), 'build', '-t', 'child:1', child]);
});

test('images: table and json; tag adds a name for the same ID', async () => {
  await tsbuildOk([...at(env.root), 'tag', 'child:1', 'localhost:5000/team/child:two']);
  const table = (await tsbuildOk([...at(env.root), 'images'])).stdout.split('\n');
  assert.match(table[0]!, /^REPOSITORY +TAG +IMAGE ID +CREATED +SIZE$/);
  const json = JSON.parse((await tsbuildOk([...at(env.root), 'images', '--format', 'json'])).stdout) as { name: string; repository: string; tag: string; id: string; size: number }[];
  const byName = new Map(json.map((i) => [i.name, i]));
  const child = byName.get('docker.io/library/child:1')!;
  assert.ok(child && child.repository === 'child' && child.tag === '1' && child.size > 1000);
  assert.is(byName.get('localhost:5000/team/child:two')?.id, child.id);
  assert.ok(table.some((l) => new RegExp(`^localhost:5000/team/child +two +${child.id.slice(7, 19)} +.+ago +\\d`).test(l)), table.join('\n'));
  await tsbuildOk([...at(env.root), 'rmi', 'localhost:5000/team/child:two']);
});

test('inspect and history', async () => {
  const doc = JSON.parse((await tsbuildOk([...at(env.root), 'inspect', 'child:1'])).stdout) as { Id: string; Manifest: { layers: unknown[] }; Config: { config: { Env: string[]; Cmd: string[] } } };
  assert.equal(doc.Config.config.Cmd, ['cat', '/p', '/c']);
  assert.ok(doc.Config.config.Env.includes('P=1'));
  const rows = JSON.parse((await tsbuildOk([...at(env.root), 'history', '--format', 'json', 'child:1'])).stdout) as { createdBy: string; emptyLayer: boolean; size: number; layer?: string }[];
  assert.match(rows[0]!.createdBy, /^CMD \["cat",? "\/p",? "\/c"\]/);
  assert.equal(rows.slice(1).map((r) => [r.createdBy.replace(/ # buildkit$/, ''), r.emptyLayer]), [
    ['RUN /bin/sh -c echo c > /c', false],
    ['ENV P=1', true],
    ['RUN /bin/sh -c echo p > /p', false],
    ['CMD ["sh"]', true],
    ['COPY rootfs/ /', false],
  ]);
  assert.is(rows[0]!.emptyLayer, true);
  assert.is(rows.filter((r) => !r.emptyLayer).length, doc.Manifest.layers.length);
  const text = (await tsbuildOk([...at(env.root), 'history', 'child:1'])).stdout;
  assert.match(text, /^LAYER +CREATED +CREATED BY +SIZE +COMMENT\n<missing> +.+ago +CMD /);
});

test('run: the image command, a given command, exit code passed on, writes discarded', async () => {
  const r = await tsbuildOk([...at(env.root), 'run', 'child:1']);
  assert.is(r.stdout, 'p\nc\n');
  const w = await tsbuild([...at(env.root), 'run', 'child:1', '--', 'sh', '-c', 'echo $P; touch /written; exit 7']);
  assert.is(w.code, 7);
  assert.is(w.stdout, '1\n');
  const again = await tsbuild([...at(env.root), 'run', 'child:1', '--', 'ls', '/written']);
  assert.is(again.code, 1, 'the previous container left nothing behind');
  const piped = await tsbuildOk([...at(env.root), 'run', '-i', 'child:1', '--', 'sh', '-c', 'read line; echo "got $line"'], { input: 'hello\n' });
  assert.is(piped.stdout, 'got hello\n', '-i feeds stdin, as docker run -i');
  const closed = await tsbuildOk([...at(env.root), 'run', 'child:1', '--', 'cat'], { input: 'ignored\n' });
  assert.is(closed.stdout, '', 'without -i the command reads an empty stdin');
  assert.equal(mountsUnder(env.root), []);
});

test('export writes the root filesystem, the same as --output type=local', async () => {
  const exported = join(env.work, 'exported');
  const local = join(env.work, 'local');
  await tsbuildOk([...at(env.root), 'export', 'child:1', '-o', exported]);
  await tsbuildOk([...at(env.root), 'build', '--output', `type=local,dest=${local}`, await env.context('FROM child:1\n')]);
  assert.is(await readFile(join(exported, 'c'), 'utf8'), 'c\n');
  assert.equal(diffTrees(await snapshotTree(exported), await snapshotTree(local)), []);
  const missing = await tsbuild([...at(env.root), 'export', 'no-such-image', '-o', join(env.work, 'x')]);
  assert.is(missing.code, 1);
});

test('save → load round trips (docker and oci formats), checked with skopeo', async () => {
  const dir = await mkdtemp(join(env.work, 'save-'));
  const ids = JSON.parse((await tsbuildOk([...at(env.root), 'images', '--format', 'json'])).stdout) as { name: string; id: string; digest: string }[];
  const child = ids.find((i) => i.name === 'docker.io/library/child:1')!;
  const parent = ids.find((i) => i.name === 'docker.io/library/parent:latest')!;

  await tsbuildOk([...at(env.root), 'save', '-o', join(dir, 'd.tar'), 'child:1', 'parent']);
  const viaSkopeo = JSON.parse(await tool('skopeo', ['inspect', '--config', `docker-archive:${join(dir, 'd.tar')}:child:1`])) as { config: { Cmd: string[] } };
  assert.equal(viaSkopeo.config.Cmd, ['cat', '/p', '/c']);
  await tsbuildOk([...at(env.root), 'save', '--format', 'oci', '-o', join(dir, 'o.tar'), 'child:1']);
  const rawText = await tool('skopeo', ['inspect', '--raw', `oci-archive:${join(dir, 'o.tar')}:1`]);
  const raw = JSON.parse(rawText) as { config: { digest: string }; layers: { mediaType: string }[] };
  assert.is(raw.config.digest, child.id);
  // The store keeps the layers a build made uncompressed; an archive carries them gzip, as a push does.
  assert.ok(raw.layers.every((l) => l.mediaType === 'application/vnd.oci.image.layer.v1.tar+gzip'), rawText);
  const saved = `sha256:${createHash('sha256').update(rawText).digest('hex')}`;

  for (const [file, names] of [['d.tar', ['child:1', 'parent:latest']], ['o.tar', ['child:1']]] as const) {
    const fresh = join(await mkdtemp(join(env.work, 'load-')), 'root');
    const out = (await tsbuildOk([...at(fresh), 'load', '-i', join(dir, file)])).stdout;
    assert.equal(out.trim().split('\n').sort(), names.map((n) => `Loaded image: ${n}`).sort());
    const loaded = JSON.parse((await tsbuildOk([...at(fresh), 'images', '--format', 'json'])).stdout) as { name: string; id: string; digest: string }[];
    const lc = loaded.find((i) => i.name === 'docker.io/library/child:1')!;
    assert.is(lc.id, child.id, `${file}: same image ID`);
    assert.is(lc.digest, saved, `${file}: the manifest the archive carries`);
    if (file === 'd.tar') assert.is(loaded.find((i) => i.name === 'docker.io/library/parent:latest')?.id, parent.id);
    assert.is((await tsbuildOk([...at(fresh), 'run', 'child:1'])).stdout, 'p\nc\n', `${file}: the loaded image runs`);
    assert.equal(await verifyStore(fresh), []);
    assert.equal(await runcContainers(join(fresh, 'runc')), []);
  }

  // A legacy docker archive (layer.tar per layer, written by skopeo) loads too, from stdin.
  await tool('skopeo', ['copy', `oci-archive:${join(dir, 'o.tar')}:1`, `docker-archive:${join(dir, 'legacy.tar')}:legacy:v1`]);
  const fresh = join(await mkdtemp(join(env.work, 'load-')), 'root');
  const legacy = await tool('sh', ['-c', `exec "$0" "$1" --root "$2" load < "$3"`, process.execPath, CLI, fresh, join(dir, 'legacy.tar')]);
  assert.is(legacy, 'Loaded image: legacy:v1\n');
  const li = JSON.parse((await tsbuildOk([...at(fresh), 'images', '--format', 'json'])).stdout) as { id: string }[];
  assert.is(li[0]!.id, child.id, 'same config, so same image ID');
  assert.is((await tsbuildOk([...at(fresh), 'run', 'legacy:v1'])).stdout, 'p\nc\n');
  assert.equal(await verifyStore(fresh), []);
});

test('load: a tampered blob is refused and nothing is tagged', async () => {
  const dir = await mkdtemp(join(env.work, 'tamper-'));
  await tsbuildOk([...at(env.root), 'save', '--format', 'oci', '-o', join(dir, 'o.tar'), 'parent']);
  const buf = await readFile(join(dir, 'o.tar'));
  // Flip one byte inside the last blob's data (the tar ends with two zero blocks and padding).
  const configText = buf.indexOf(Buffer.from('"architecture"'));
  assert.ok(configText > 0);
  buf[configText + 2] ^= 0x20;
  await writeFile(join(dir, 'bad.tar'), buf);
  const fresh = join(await mkdtemp(join(env.work, 'load-')), 'root');
  const r = await tsbuild([...at(fresh), 'load', '-i', join(dir, 'bad.tar')]);
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /error: .*(digest|hash)/i);
  assert.is((await tsbuildOk([...at(fresh), 'images', '-q'])).stdout, '');
  assert.equal(await verifyStore(fresh), []);
});

test('rmi: refuses a parent of another tagged image, unless another name keeps it or --force', async () => {
  const refused = await tsbuild([...at(env.root), 'rmi', 'parent']);
  assert.is(refused.code, 2, refused.stderr);
  assert.match(refused.stderr, /cannot remove parent: image child:1 is built on it/, refused.stderr);
  assert.match(refused.stderr, /hint: .*--force/);
  await tsbuildOk([...at(env.root), 'tag', 'parent', 'parent:alias']);
  assert.is((await tsbuildOk([...at(env.root), 'rmi', 'parent'])).stdout, 'Untagged: parent:latest\n');
  assert.is((await tsbuild([...at(env.root), 'rmi', 'parent:alias'])).code, 2, 'now the last name');
  await tsbuildOk([...at(env.root), 'rmi', '--force', 'parent:alias']);
  await tsbuildOk([...at(env.root), 'rmi', 'child:1']);
  const missing = await tsbuild([...at(env.root), 'rmi', 'child:1']);
  assert.is(missing.code, 1);
  assert.match(missing.stderr, /image child:1 is not in the local store/);
  assert.is((await tsbuildOk([...at(env.root), 'images', '--format', 'json'])).stdout.includes('child'), false);
});

test.run();

/**
 * BuildKit's whole-build table (conformance/frontend/build-cases.json, README §7.2) run as real
 * builds with the tsbuild CLI on a root holding the local busybox base. Each case gets a fresh
 * context; file expectations are checked on a `type=local` export, image expectations on the
 * config of a `type=oci` layout export. `convertOnly` cases are compiled in process (plan time,
 * no solve), as upstream only converted them.
 *
 * The heredoc/* cases run in test/integration/heredoc.test.ts and are skipped here.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { useBuildRoot } from '../helpers/build-root.js';
import { tsbuild, tsbuildOk } from '../helpers/cli.js';
import { CONFORMANCE_DIR } from './report.js';
import { compileDockerfile } from '../../src/frontend/compile.js';
import { storeImageResolver } from '../../src/orchestrator/image-resolver.js';
import { openWorker } from '../../src/orchestrator/worker.js';
import { hostPlatform } from '../../src/oci/image.js';
import { BuildError } from '../../src/errors.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- the case file is untyped JSON */
type Case = any;

/**
 * Case id → why it does not pass yet. A listed case is still run: it must fail (a case that now
 * passes fails the suite until it is removed here), so the list can only shrink.
 */
const KNOWN_FAILURES = new Map<string, string>([
  // `alpine:latest` is the busybox base tagged again (no registry here). No alpine case needs an
  // alpine-only tool (their RUNs use echo and sh), so none is listed for that reason.
]);

const test = suite('conformance: build cases');
const env = useBuildRoot(test, 'build-cases');

const cases = (JSON.parse(readFileSync(`${CONFORMANCE_DIR}/frontend/build-cases.json`, 'utf8')) as Case[]).filter((c) => !c.id.startsWith('heredoc/'));

/** History entries of the busybox base: historyAfterBase offsets start after them. */
let baseHistory = 0;

test.before(async () => {
  // The cases name busybox:latest and alpine:latest; both are the local busybox base.
  await tsbuildOk(['--root', env.root, 'tag', 'busybox', 'busybox:latest']);
  await tsbuildOk(['--root', env.root, 'tag', 'busybox', 'alpine:latest']);
  const ctx = await env.context('FROM busybox\n');
  const oci = join(env.work, 'base-oci');
  await tsbuildOk(['--root', env.root, 'build', '--output', `type=oci,dest=${oci},tar=false`, ctx]);
  baseHistory = (await readOciConfig(oci)).history.length;
});

/** Writes the context of a case; returns the context dir and the -f path when it is not the default. */
async function makeContext(c: Case): Promise<{ ctx: string; file?: string }> {
  const ctx = await mkdtemp(join(env.work, 'ctx-'));
  const name: string = c.dockerfileName ?? 'Dockerfile';
  let file: string | undefined;
  if (c.dockerfileInContext === false) {
    const outside = await mkdtemp(join(env.work, 'df-'));
    file = join(outside, name);
    await writeFile(file, c.dockerfile);
  } else {
    await mkdir(dirname(join(ctx, name)), { recursive: true });
    await writeFile(join(ctx, name), c.dockerfile);
    if (c.filename !== undefined) file = join(ctx, c.filename);
    else if (name !== 'Dockerfile') file = join(ctx, name);
  }
  for (const [p, mode] of Object.entries((c.context?.dirs ?? {}) as Record<string, string>)) {
    await mkdir(join(ctx, p), { recursive: true });
    await chmod(join(ctx, p), parseInt(mode, 8));
  }
  for (const [p, f] of Object.entries((c.context?.files ?? {}) as Record<string, { content: string; mode?: string }>)) {
    await mkdir(dirname(join(ctx, p)), { recursive: true });
    await writeFile(join(ctx, p), f.content);
    if (f.mode) await chmod(join(ctx, p), parseInt(f.mode, 8));
  }
  for (const [p, target] of Object.entries((c.context?.symlinks ?? {}) as Record<string, string>)) {
    await mkdir(dirname(join(ctx, p)), { recursive: true });
    await symlink(target, join(ctx, p));
  }
  return { ctx, file };
}

async function readOciConfig(dir: string): Promise<any> {
  const blob = async (digest: string) => JSON.parse(await readFile(join(dir, 'blobs', ...digest.split(':')), 'utf8'));
  const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8'));
  const manifest = await blob(index.manifests[0].digest);
  return blob(manifest.config.digest);
}

/** The platforms (in order) and configs of a multi-platform OCI layout: index.json → image index → manifests. */
async function readOciPlatforms(dir: string): Promise<{ platform: string; config: any }[]> {
  const blob = async (digest: string) => JSON.parse(await readFile(join(dir, 'blobs', ...digest.split(':')), 'utf8'));
  const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8'));
  const top = await blob(index.manifests[0].digest);
  const out = [];
  for (const m of top.manifests ?? []) {
    const p = m.platform ?? {};
    out.push({ platform: [p.os, p.architecture, p.variant].filter(Boolean).join('/'), config: await blob((await blob(m.digest)).config.digest) });
  }
  return out;
}

const exists = (p: string) => lstat(p).then(() => true, () => false);
const list = (v: string | string[]) => (Array.isArray(v) ? v : [v]);

/** Checks `expect.image` on an image config; returns the problems found. */
function checkImage(cfg: any, want: any): string[] {
  const bad: string[] = [];
  const c = cfg.config ?? {};
  const eq = (name: string, got: unknown, exp: unknown) => {
    if (JSON.stringify(got ?? null) !== JSON.stringify(exp)) bad.push(`${name}: got ${JSON.stringify(got)}, want ${JSON.stringify(exp)}`);
  };
  if ('user' in want) eq('user', c.User || null, want.user);
  if ('entrypoint' in want) eq('entrypoint', c.Entrypoint, want.entrypoint);
  if ('cmd' in want) eq('cmd', c.Cmd, want.cmd);
  if ('env' in want) eq('env', c.Env, want.env);
  for (const e of want.envContains ?? []) if (!(c.Env ?? []).includes(e)) bad.push(`env lacks ${e}`);
  for (const k of want.envHasKey ?? []) if (!(c.Env ?? []).some((e: string) => e.startsWith(`${k}=`))) bad.push(`env has no ${k}`);
  for (const [k, v] of Object.entries(want.labels ?? {})) if ((c.Labels ?? {})[k] !== v) bad.push(`label ${k}: got ${(c.Labels ?? {})[k]}, want ${v}`);
  if (want.exposedPorts) eq('exposedPorts', Object.keys(c.ExposedPorts ?? {}).sort(), [...want.exposedPorts].sort());
  if (want.workingDirNonEmpty && !c.WorkingDir) bad.push('WorkingDir empty');
  if (want.osNonEmpty && !cfg.os) bad.push('os empty');
  if (want.architectureNonEmpty && !cfg.architecture) bad.push('architecture empty');
  if (want.rootfsType) eq('rootfs.type', cfg.rootfs?.type, want.rootfsType);
  if ('diffIdCount' in want) eq('diff_ids', cfg.rootfs?.diff_ids?.length, want.diffIdCount);
  if ('layerCount' in want) eq('layers', cfg.rootfs?.diff_ids?.length, want.layerCount);
  const history: any[] = cfg.history ?? [];
  if ('historyCount' in want) eq('history count', history.length, want.historyCount);
  for (const h of want.history ?? []) {
    const e = history[h.index];
    if (!e?.created_by?.includes(h.createdByContains)) bad.push(`history[${h.index}] ${JSON.stringify(e?.created_by)} lacks ${h.createdByContains}`);
    if ('emptyLayer' in h && Boolean(e?.empty_layer) !== h.emptyLayer) bad.push(`history[${h.index}] empty_layer ${e?.empty_layer}`);
  }
  const after = history.slice(baseHistory);
  if ('historyCountAfterBase' in want) eq('history count after base', after.length, want.historyCountAfterBase);
  for (const h of want.historyAfterBase ?? []) {
    const by: string = after[h.offset]?.created_by ?? '';
    if ('createdByEquals' in h && by !== h.createdByEquals) bad.push(`history+${h.offset} ${JSON.stringify(by)} != ${JSON.stringify(h.createdByEquals)}`);
    for (const s of list(h.createdByContains ?? [])) if (!by.includes(s)) bad.push(`history+${h.offset} ${JSON.stringify(by)} lacks ${JSON.stringify(s)}`);
    for (const s of list(h.createdByNotContains ?? [])) if (by.includes(s)) bad.push(`history+${h.offset} ${JSON.stringify(by)} has ${JSON.stringify(s)}`);
    if ('emptyLayer' in h && Boolean(after[h.offset]?.empty_layer) !== h.emptyLayer) bad.push(`history+${h.offset} empty_layer ${after[h.offset]?.empty_layer}`);
  }
  if (want.historyEntriesHaveCreated && !after.every((e) => e.created)) bad.push('a history entry has no created time');
  return bad;
}

/** Checks the file expectations on a local export; returns the problems found. */
async function checkFiles(out: string, x: any): Promise<string[]> {
  const bad: string[] = [];
  const read = (p: string) => readFile(join(out, p), 'utf8').catch((e: Error) => `<${e.message}>`);
  for (const [p, want] of Object.entries((x.files ?? {}) as Record<string, string>)) {
    const got = await read(p);
    if (got !== want) bad.push(`${p}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
  }
  for (const [p, subs] of Object.entries((x.filesContain ?? {}) as Record<string, string[]>)) {
    const got = await read(p);
    for (const s of subs) if (!got.includes(s)) bad.push(`${p} lacks ${JSON.stringify(s)}`);
  }
  for (const [p, subs] of Object.entries((x.filesNotContain ?? {}) as Record<string, string[]>)) {
    const got = await read(p);
    for (const s of subs) if (got.includes(s)) bad.push(`${p} has ${JSON.stringify(s)}`);
  }
  for (const p of x.absent ?? []) if (await exists(join(out, p))) bad.push(`${p} exists`);
  for (const p of x.dirs ?? []) if (!(await lstat(join(out, p)).then((s) => s.isDirectory(), () => false))) bad.push(`${p} is not a directory`);
  for (const p of x.emptyDirs ?? []) if ((await readdir(join(out, p)).catch(() => ['<missing>'])).length > 0) bad.push(`${p} is not an empty directory`);
  for (const [p, target] of Object.entries((x.symlinks ?? {}) as Record<string, string>)) {
    const got = await readlink(join(out, p)).catch(() => '<not a symlink>');
    if (got !== target) bad.push(`${p} -> ${got}, want ${target}`);
  }
  return bad;
}

/** Compiles a case at plan time (no solve); returns the problems found. */
async function checkConvert(c: Case): Promise<string[]> {
  const { ctx } = await makeContext(c);
  const worker = await openWorker(env.root);
  let plan;
  let error: unknown;
  try {
    plan = await compileDockerfile(
      { path: join(ctx, 'Dockerfile'), text: c.dockerfile },
      { dockerfilePath: join(ctx, 'Dockerfile'), contextDir: ctx, dockerignore: '', buildArgs: c.buildArgs ?? {}, target: c.target, platform: hostPlatform(), labels: c.labels },
      storeImageResolver(worker),
      { signal: new AbortController().signal, events: { emit() {} } },
    );
  } catch (e) {
    error = e;
  } finally {
    await worker.close();
  }
  const x = c.expect;
  if (x.error) {
    if (!error) return ['expected an error, the conversion succeeded'];
    if (!(error instanceof BuildError)) return [`not a BuildError: ${error}`];
    if (x.error.equals !== undefined && error.message !== x.error.equals) return [`error ${JSON.stringify(error.message)} != ${JSON.stringify(x.error.equals)}`];
    return (x.error.contains ?? []).filter((s: string) => !error.message.includes(s)).map((s: string) => `error ${JSON.stringify(error.message)} lacks ${JSON.stringify(s)}`);
  }
  if (error) return [`conversion failed: ${(error as Error).message}`];
  return x.image ? checkImage(plan!.config, x.image) : [];
}

/** Builds a case with the CLI; returns the problems found. */
async function checkBuild(c: Case, slug: string): Promise<string[]> {
  const x = c.expect;
  if (c.baseImageDockerfile) {
    const base = await env.context(c.baseImageDockerfile);
    await tsbuildOk(['--root', env.root, 'build', '-t', `base-${slug}`, base]);
    c = { ...c, dockerfile: c.dockerfile.replaceAll('{{BASE}}', `base-${slug}`) };
  }
  const { ctx, file } = await makeContext(c);
  const args = ['--root', env.root, 'build'];
  if (file) args.push('-f', file);
  for (const [k, v] of Object.entries((c.buildArgs ?? {}) as Record<string, string>)) args.push('--build-arg', `${k}=${v}`);
  for (const [k, v] of Object.entries((c.labels ?? {}) as Record<string, string>)) args.push('--label', `${k}=${v}`);
  if (c.target) args.push('--target', c.target);
  if (c.platform) args.push('--platform', c.platform);
  const out = join(env.work, `${slug}-out`);
  const oci = join(env.work, `${slug}-oci`);
  const wantsFiles = ['files', 'filesContain', 'filesNotContain', 'absent', 'dirs', 'emptyDirs', 'symlinks'].some((k) => k in x);
  if (wantsFiles) args.push('--output', `type=local,dest=${out}`);
  if (x.image || x.perPlatform) args.push('--output', `type=oci,dest=${oci},tar=false`);
  const r = await tsbuild([...args, ctx], { cwd: env.work });
  if (x.error) {
    if (r.code === 0) return ['expected an error, the build succeeded'];
    const bad: string[] = [];
    if (x.error.equals !== undefined && !r.stderr.includes(x.error.equals)) bad.push(`stderr lacks ${JSON.stringify(x.error.equals)}`);
    for (const s of x.error.contains ?? []) if (!r.stderr.includes(s)) bad.push(`stderr lacks ${JSON.stringify(s)}`);
    if (c.expect.errorSourceLines) {
      // The rendered snippet marks the instruction's lines with `>>>`.
      const marked = [...r.stderr.matchAll(/^ >>> +(\d+) \|/gm)].map((m) => Number(m[1]));
      if (JSON.stringify(marked) !== JSON.stringify(c.expect.errorSourceLines)) bad.push(`source lines ${JSON.stringify(marked)}, want ${JSON.stringify(c.expect.errorSourceLines)}`);
    }
    return bad.length ? [...bad, `--- stderr ---\n${r.stderr}`] : [];
  }
  if (r.code !== 0) return [`build failed (${r.code}):\n${r.stderr}`];
  const bad = wantsFiles ? await checkFiles(out, x) : [];
  if (x.image) bad.push(...checkImage(await readOciConfig(oci), x.image));
  if (x.perPlatform) {
    const images = await readOciPlatforms(oci);
    const order = images.map((i) => i.platform);
    if (x.indexManifestOrder && JSON.stringify(order) !== JSON.stringify(x.indexManifestOrder)) bad.push(`index order ${JSON.stringify(order)}, want ${JSON.stringify(x.indexManifestOrder)}`);
    for (const [platform, want] of Object.entries(x.perPlatform as Record<string, { image?: unknown }>)) {
      const got = images.find((i) => i.platform === platform);
      if (!got) bad.push(`no image for ${platform} (index has ${order.join(', ')})`);
      else if (want.image) bad.push(...checkImage(got.config, want.image).map((b) => `${platform}: ${b}`));
    }
  }
  return bad;
}

for (const c of cases) {
  test(`build-case ${c.id}`, async () => {
    const slug = c.id.replace(/\W/g, '-');
    const bad = c.expect.convertOnly ? await checkConvert(c) : await checkBuild(c, slug);
    const known = KNOWN_FAILURES.get(c.id);
    if (known !== undefined) {
      // TSBUILD_SHOW_KNOWN=1 prints how a known failure fails today.
      if (process.env['TSBUILD_SHOW_KNOWN']) console.log(`known failure ${c.id}:\n${bad.join('\n')}`);
      assert.ok(bad.length > 0, `${c.id} now passes: remove it from KNOWN_FAILURES (${known})`);
      return;
    }
    assert.equal(bad, [], `${c.id}:\n${bad.join('\n')}`);
  });
}

test.run();

import * as assert from 'uvu/assert';
import { chmod, chown, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { withBuildUser } from './build-user.js';
import { tsbuild, tsbuildWithoutSysAdmin, type CliResult } from './cli.js';
import { mountsUnder } from './mounts.js';
import { makeBusyboxRootfs } from './busybox-rootfs.js';

/** One isolation mode's way to run tsbuild, with an out dir it may write and the root flag it uses. */
export interface ModeRun {
  readonly name: 'root' | 'no CAP_SYS_ADMIN' | 'rootless';
  run(args: readonly string[]): Promise<CliResult>;
  /** A fresh dir owned by the mode's user. */
  readonly out: string;
  /** `--root DIR` under `out` (root modes), or none (the user's default root). */
  readonly rootArgs: readonly string[];
}

/**
 * Runs `build` as root, as root without CAP_SYS_ADMIN (capsh) and as a throw-away user with
 * subordinate ids, each with its own fresh state root, in a world-readable temp dir that
 * `prepare` fills first (the user must read the context). Asserts nothing stayed mounted and
 * removes everything after.
 */
export async function inEveryMode<T>(env: NodeJS.ProcessEnv, prepare: (shared: string) => Promise<void>, build: (mode: ModeRun) => Promise<T>): Promise<Record<ModeRun['name'], T>> {
  const shared = await mkdtemp(join(tmpdir(), 'tsbuild-every-mode-'));
  try {
    await chmod(shared, 0o755);
    await prepare(shared);
    const outs: string[] = [];
    const fresh = async (uid = 0, gid = 0): Promise<string> => {
      const d = await mkdtemp(join(shared, 'out-'));
      await chown(d, uid, gid);
      outs.push(d);
      return d;
    };
    const rootOut = await fresh();
    const root = await build({ name: 'root', run: (a) => tsbuild(a, { env }), out: rootOut, rootArgs: ['--root', join(rootOut, 'root')] });
    const capOut = await fresh();
    const noCap = await build({ name: 'no CAP_SYS_ADMIN', run: (a) => tsbuildWithoutSysAdmin(a, { env }), out: capOut, rootArgs: ['--root', join(capOut, 'root')] });
    const rootless = await withBuildUser({ subordinateIds: true }, async (user) => {
      const userEnv = Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));
      return build({ name: 'rootless', run: (a) => user.tsbuild(a, { env: userEnv }), out: await fresh(user.uid, user.gid), rootArgs: [] });
    });
    for (const d of outs) assert.equal(mountsUnder(d), [], `nothing left mounted under ${d}`);
    return { root, 'no CAP_SYS_ADMIN': noCap, rootless };
  } finally {
    await rm(shared, { recursive: true, force: true });
  }
}

/** Every file of a directory (an OCI layout), path → bytes. */
export async function layoutFiles(dir: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const walk = async (rel: string): Promise<void> => {
    for (const e of await readdir(join(dir, rel), { withFileTypes: true })) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(p);
      else out.set(p, await readFile(join(dir, p)));
    }
  };
  await walk('');
  return out;
}

/** The other modes' layouts are root's, byte for byte. */
export function assertSameLayouts(byMode: Record<ModeRun['name'], Map<string, Buffer>>): void {
  const root = byMode.root;
  assert.ok(root.size > 5, 'the layout has its blobs');
  for (const name of ['no CAP_SYS_ADMIN', 'rootless'] as const) {
    const other = byMode[name];
    assert.equal([...other.keys()].sort(), [...root.keys()].sort(), `${name}: same files`);
    for (const [p, bytes] of root) assert.ok(bytes.equals(other.get(p)!), `${name}: ${p} differs from root's`);
  }
}

/**
 * An `inEveryMode` prepare step: a context dir `ctx` in the shared dir with a busybox rootfs
 * under `rootfs/` (for a `FROM scratch` + `COPY rootfs/ /` base stage, so no mode needs a
 * registry) and `files`; a mode finds it with {@link modeContext}.
 */
export function busyboxContext(files: Readonly<Record<string, string>>): (shared: string) => Promise<void> {
  return async (shared) => {
    const ctx = join(shared, 'ctx');
    await mkdir(ctx);
    await makeBusyboxRootfs(join(ctx, 'rootfs'));
    for (const [name, content] of Object.entries(files)) await writeFile(join(ctx, name), content);
  };
}

/** The context `busyboxContext` made, seen from a mode's out dir. */
export function modeContext(mode: ModeRun): string {
  return join(mode.out, '..', 'ctx');
}

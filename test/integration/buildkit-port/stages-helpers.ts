import { mkdtemp, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { BuildRoot } from '../../helpers/build-root.js';
import { tsbuild, tsbuildOk, type CliResult } from '../../helpers/cli.js';

/** A finished build: its output dir (type=local) and what it printed. */
export interface Built {
  readonly out: string;
  readonly stderr: string;
}

/** The ported BuildKit tests' builds: `tsbuild build` in `env`'s root, as f.Solve is in theirs. */
export function builder(env: BuildRoot) {
  const base = (): string[] => ['--root', env.root, 'build', '--progress', 'plain'];
  return {
    /** Builds `dir` with a local export; throws with the output when it fails. */
    async out(dir: string, extra: readonly string[] = []): Promise<Built> {
      const out = await mkdtemp(join(env.work, 'out-'));
      const r = await tsbuildOk([...base(), '--output', `type=local,dest=${out}`, ...extra, dir]);
      return { out, stderr: r.stderr };
    },
    /** Builds `dir` into the store (e.g. `-t name`), no export. */
    ok(dir: string, extra: readonly string[] = []): Promise<CliResult> {
      return tsbuildOk([...base(), ...extra, dir]);
    },
    /** Builds `dir`, expecting it to fail. */
    async fails(dir: string, extra: readonly string[] = []): Promise<CliResult> {
      const r = await tsbuild([...base(), ...extra, dir]);
      if (r.code === 0) throw new Error(`expected the build of ${dir} to fail\n${r.stderr}`);
      return r;
    },
    /** The config of a stored image (`tsbuild inspect`). */
    async config(name: string): Promise<{ config: Record<string, unknown>; history?: { created_by?: string; empty_layer?: boolean; comment?: string }[] }> {
      const r = await tsbuildOk(['--root', env.root, 'inspect', name]);
      return (JSON.parse(r.stdout) as { Config: never }).Config;
    },
  };
}

export const read = (dir: string, p: string): Promise<string> => readFile(join(dir, p), 'utf8');
export const list = async (dir: string): Promise<string[]> => (await readdir(dir)).sort();

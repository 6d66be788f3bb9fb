import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const pexec = promisify(execFile);

/** Runs an independent checker (skopeo, umoci, oci-image-tool, tar, buildah); throws with its stderr on failure. */
export async function tool(cmd: string, args: readonly string[], opts: { cwd?: string } = {}): Promise<string> {
  try {
    const { stdout } = await pexec(cmd, [...args], { cwd: opts.cwd, maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${err.stderr || err.message}`);
  }
}

/** Containers runc still knows under `stateRoot`: must be none after every build. */
export async function runcContainers(stateRoot: string): Promise<string[]> {
  const out = await tool('runc', ['--root', stateRoot, 'list', '-q']).catch(() => '');
  return out.split('\n').filter(Boolean);
}

import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { tool } from './run-tool.js';

const pexec = promisify(execFile);

/**
 * buildah confined to one temp directory: vfs storage (so no overlay mount outlives a command)
 * and chroot isolation with the host network (without `--network host` buildah creates a bridge
 * and iptables rules on the machine). Every call goes through `#global()`, so no call can forget them.
 */
export class Buildah {
  readonly #dir: string;

  /** `dir` holds buildah's storage (`dir/storage`) and run root (`dir/run`); nothing else is written. */
  constructor(dir: string) {
    this.#dir = dir;
  }

  #global(): string[] {
    return ['--root', join(this.#dir, 'storage'), '--runroot', join(this.#dir, 'run'), '--storage-driver', 'vfs'];
  }

  /**
   * Throws a clear error when buildah is not installed: the differential suite must fail, not
   * skip, on a machine (or CI image) that lacks its reference builder.
   */
  static async assertInstalled(): Promise<string> {
    try {
      const { stdout } = await pexec('buildah', ['--version']);
      return stdout.trim();
    } catch (e) {
      throw new Error(`buildah is required by the differential test and was not found (apt-get install buildah): ${(e as Error).message}`);
    }
  }

  /**
   * `buildah bud` of `contextDir` into the tag `name`; `buildArgs` as KEY=VALUE pairs. Builds in
   * docker format: in OCI format buildah ignores SHELL and drops ONBUILD, which docker honours;
   * `pushOciLayout` converts the result to OCI.
   */
  async bud(contextDir: string, name: string, opts: { buildArgs?: readonly string[]; target?: string } = {}): Promise<void> {
    const args = [...this.#global(), 'bud', '--isolation', 'chroot', '--network', 'host', '--format', 'docker', '--quiet', '-t', name];
    for (const a of opts.buildArgs ?? []) args.push('--build-arg', a);
    if (opts.target) args.push('--target', opts.target);
    await tool('buildah', [...args, contextDir]);
  }

  /** Pushes the stored image `name` into the OCI layout `layoutDir`, tagged `tag`. */
  async pushOciLayout(name: string, layoutDir: string, tag: string): Promise<void> {
    await tool('buildah', [...this.#global(), 'push', '--quiet', name, `oci:${layoutDir}:${tag}`]);
  }

  /** Removes every working container and image, then the directory itself. */
  async destroy(): Promise<void> {
    await tool('buildah', [...this.#global(), 'rm', '-a']).catch(() => '');
    await tool('buildah', [...this.#global(), 'rmi', '-a', '-f']).catch(() => '');
    await rm(this.#dir, { recursive: true, force: true });
  }
}

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { access, constants, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { tool } from './run-tool.js';

const pexec = promisify(execFile);

/**
 * Debian's docker.io paths. /usr/local/bin/docker on these machines is an unrelated client that
 * shadows /usr/bin/docker in PATH, so both are always called by absolute path.
 */
export const DOCKER = '/usr/bin/docker';
export const DOCKERD = '/usr/sbin/dockerd';

/**
 * A dockerd (20.10, BuildKit v0.8 inside) this test process started, confined to one temp dir:
 * data, exec state, socket, pid file, trust key and the containerd it supervises all live under
 * `dir`, and nothing touches the host's network (no iptables, no bridge, no forwarding). Images it
 * stores go with `dir`; `stop()` kills it by PID, unmounts what it left under `dir`, removes `dir`.
 */
export class Dockerd {
  readonly dir: string;
  readonly #child: ChildProcess;
  readonly #exited: Promise<void>;

  private constructor(dir: string, child: ChildProcess, exited: Promise<void>) {
    this.dir = dir;
    this.#child = child;
    this.#exited = exited;
  }

  get socket(): string {
    return `unix://${join(this.dir, 'docker.sock')}`;
  }

  /** dockerd's own log (stderr), for error messages. */
  log(): string {
    try {
      return readFileSync(join(this.dir, 'dockerd.log'), 'utf8');
    } catch {
      return '';
    }
  }

  /** Starts dockerd and waits until `docker version` answers; throws with its log when it cannot. */
  static async start(timeoutMs = 60_000): Promise<Dockerd> {
    for (const bin of [DOCKERD, DOCKER]) {
      await access(bin, constants.X_OK).catch(() => {
        throw new Error(`${bin} is required by the BuildKit oracle test and is missing: apt-get install --no-install-recommends docker.io (with a policy-rc.d that exits 101, so it does not start)`);
      });
    }
    const dir = await mkdtemp(join(tmpdir(), 'tsbuild-dockerd-'));
    const config = {
      iptables: false,
      ip6tables: false,
      bridge: 'none',
      'ip-forward': false,
      'ip-masq': false,
      // Given here and not as --exec-root too: dockerd refuses a directive set both ways.
      'exec-root': join(dir, 'exec'),
      // Otherwise dockerd 20.10 writes its trust key to /etc/docker/key.json on the host.
      'deprecated-key-path': join(dir, 'key.json'),
    };
    await writeFile(join(dir, 'daemon.json'), JSON.stringify(config));
    await mkdir(join(dir, 'exec'));
    // A namespace of our own: if a system containerd (/run/containerd/containerd.sock) exists,
    // dockerd uses it instead of starting its own child, and must not share its namespace.
    const ns = `tsbuild-oracle-${process.pid}`;
    const args = [
      '--config-file', join(dir, 'daemon.json'),
      '--data-root', join(dir, 'data'),
      '--pidfile', join(dir, 'pid'),
      '--host', `unix://${join(dir, 'docker.sock')}`,
      '--containerd-namespace', ns,
      '--containerd-plugins-namespace', `${ns}-plugins`,
    ];
    const logFd = openSync(join(dir, 'dockerd.log'), 'w');
    const child = spawn(DOCKERD, args, { stdio: ['ignore', logFd, logFd] });
    closeSync(logFd);
    const exited = new Promise<void>((res) => child.once('exit', () => res()));
    child.once('error', () => undefined);
    const d = new Dockerd(dir, child, exited);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) {
        const log = d.log();
        await d.stop();
        throw new Error(`dockerd exited during start-up (${child.exitCode ?? child.signalCode}):\n${log.slice(-4000)}`);
      }
      if (await d.docker(['version', '--format', '{{.Server.Version}}']).then(() => true, () => false)) return d;
      if (Date.now() > deadline) {
        const log = d.log();
        await d.stop();
        throw new Error(`dockerd did not answer within ${timeoutMs} ms:\n${log.slice(-4000)}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** Runs the docker client against this daemon; resolves to stdout, rejects with stderr. */
  async docker(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
    const all = ['-H', this.socket, ...args];
    try {
      const { stdout } = await pexec(DOCKER, all, { env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024 });
      return stdout;
    } catch (e) {
      const err = e as { stdout?: string; stderr?: string; message: string };
      throw new Error(`docker ${args.join(' ')} failed: ${err.stderr || err.message}\n${(err.stdout ?? '').slice(-2000)}`);
    }
  }

  /**
   * `docker build` with BuildKit and the host network (no bridge exists: `bridge` is none).
   * Retried (twice at most, without cache) when runc cannot start a RUN because a path dockerd
   * itself prepared is missing: dockerd 20.10's BuildKit now and then starts a RUN on a rootfs
   * that is not (or no longer) mounted ("stat /bin/sh: no such file or directory"), or on a
   * secret whose tmpfs is gone ("error mounting .../buildkit-secrets...: no such file or
   * directory"), about one RUN in a few dozen here (the class of moby/moby#44943,
   * docker/buildx#2400). The same build passes again; no case's own outcome is a runc start
   * failure, and a real missing shell fails every time.
   */
  async build(context: string, tag: string, opts: { dockerfile?: string; buildArgs?: readonly string[]; target?: string; secrets?: readonly string[] } = {}): Promise<string> {
    const args = ['build', '--network', 'host', '--progress', 'plain', '-t', tag];
    if (opts.dockerfile) args.push('-f', opts.dockerfile);
    for (const a of opts.buildArgs ?? []) args.push('--build-arg', a);
    for (const s of opts.secrets ?? []) args.push('--secret', s);
    if (opts.target) args.push('--target', opts.target);
    const lostMount = /runc run failed: unable to start container process: (exec: "\/bin\/sh": stat \/bin\/sh|error during container init: error mounting "[^"]*buildkit-secrets[^"]*" to rootfs)[^\n]*no such file or directory/;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.docker([...args, ...(attempt > 0 ? ['--no-cache'] : []), context], { DOCKER_BUILDKIT: '1' });
      } catch (e) {
        if (attempt === 2 || !lostMount.test((e as Error).message)) throw e;
        console.log(`  note: dockerd's BuildKit lost a mount of its own before a RUN (${tag}); building again without cache`);
      }
    }
  }

  /**
   * SIGTERM by PID, SIGKILL after `graceMs`; then every mount left under `dir` is unmounted
   * (deepest first) and `dir` removed.
   */
  async stop(graceMs = 20_000): Promise<void> {
    const child = this.#child;
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = new Promise<'timeout'>((res) => setTimeout(() => res('timeout'), graceMs).unref());
      if ((await Promise.race([this.#exited, timer])) === 'timeout') {
        child.kill('SIGKILL');
        await this.#exited;
      }
    }
    for (const m of await mountsBelow(this.dir)) {
      await tool('umount', [m]).catch(() => tool('umount', ['-l', m]).catch(() => ''));
    }
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** Mount points at or below `dir` from /proc/self/mountinfo, deepest first (octal escapes decoded). */
async function mountsBelow(dir: string): Promise<string[]> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return info
    .split('\n')
    .map((l) => unescape(l.split(' ')[4] ?? ''))
    .filter((p) => p === dir || p.startsWith(dir + '/'))
    .sort((a, b) => b.length - a.length);
}

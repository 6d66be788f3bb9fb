import type { Ctx } from '../ctx.js';
import { BuildError, isAbortError } from '../errors.js';
import { withHostResolvConf } from './etc-files.js';
import type { ExecRequest } from './spec.js';
import { createNetNamespace, NetNamespaceError, type NetNamespace } from './net-namespace.js';
import { SLIRP_INTERFACE, SlirpError, startSlirp, type Slirp } from './slirp.js';

/** A private network lent to one container: a namespace to join, given back by `release`. */
export interface SandboxNetwork {
  /** Path of the network namespace (for the runtime spec's `namespaces[].path`). */
  readonly path: string;
  /** Throws unless `path` still leads to this private namespace (see NetNamespace.verify). */
  verify(): Promise<void>;
  /**
   * Gives it back once the container is gone. `reusable`: the container could not change the
   * namespace (no CAP_NET_ADMIN), so the next RUN may get it; otherwise it is torn down.
   */
  release(reusable: boolean): Promise<void>;
}

/** Makes the `sandbox` network of RUN steps. */
export interface NetworkProvider {
  /**
   * A private network, or undefined when none can be made on this machine: the caller then
   * uses the host's network (the provider has told the user once, through ctx.events).
   */
  acquire(ctx: Ctx): Promise<SandboxNetwork | undefined>;
  /**
   * Starts making a network in the background unless one is ready or being made, so that the
   * next acquire() finds it: called as a RUN step starts, its mounts are made meanwhile.
   */
  prepare?(ctx: Ctx): void;
  /**
   * At most `n` more RUN steps can want a network (the build's RUNs not yet run): idle networks
   * beyond `n` are torn down now, in the background (close() waits for them).
   */
  keepAtMost?(n: number): void;
  /**
   * Tears down every network it holds and waits until they are gone; networks released later
   * are torn down then (a later acquire() still gets one). Callable more than once.
   */
  close(): Promise<void>;
}

/** Idle networks kept for reuse; more RUNs than this at once is rare on a builder. */
const MAX_IDLE = 16;

interface Held {
  readonly ns: NetNamespace;
  readonly slirp: Slirp;
}

/**
 * BuildKit's default RUN network, without a bridge or any change to the host: a network
 * namespace of our own, connected to the outside by slirp4netns (user-mode networking, so it
 * works as root of our own user namespace too). A RUN reaches what an unprivileged process on
 * the host reaches, except the host's loopback services.
 *
 * Pooled per build, as BuildKit pools its namespaces: making one takes ~5-10 ms here (slirp4netns
 * starting, mostly) and tearing it down ~2 ms (slirp4netns exiting; its tap device is persistent
 * and goes with the namespace, in the kernel's background cleanup, since removing it took 20-35 ms
 * that the build waited for). So the first one is made while its RUN mounts, or while an earlier
 * step runs (prepare), and the build tears them down as soon as no RUN is left to want them
 * (keepAtMost, close), while the image is made. A
 * namespace goes back to the pool only when its RUN had no CAP_NET_ADMIN (not
 * --security=insecure): such a RUN cannot change addresses, routes or filters, and its sockets
 * die with its processes, so the next RUN finds it as new.
 *
 * One instance per build: the fallback warning is printed once per build.
 */
export class SlirpNetworkProvider implements NetworkProvider {
  /** Why no private network can be made here; set by the first failure. */
  #unavailable?: string;
  #worked = false;
  #closed = false;
  readonly #idle: Held[] = [];
  /** The one network prepare() is making, until an acquire() takes it. */
  #next?: Promise<Held | undefined>;
  /** Teardowns under way (slirp4netns being reaped), which no RUN step waits for; close() does. */
  readonly #dying = new Set<Promise<void>>();
  /** The first teardown that failed: close() reports it. */
  #teardownError?: unknown;

  async acquire(ctx: Ctx): Promise<SandboxNetwork | undefined> {
    ctx.signal.throwIfAborted();
    if (this.#unavailable !== undefined) return undefined;
    for (let h = this.#idle.pop(); h; h = this.#idle.pop()) {
      if (h.slirp.alive()) return this.#lend(h);
      await destroy(h);
    }
    const next = this.#next;
    this.#next = undefined;
    const prepared = await next;
    if (prepared?.slirp.alive()) return this.#lend(prepared);
    if (prepared) await destroy(prepared);
    ctx.signal.throwIfAborted();
    if (this.#unavailable !== undefined) return undefined;
    const h = await this.#create(ctx);
    return h && this.#lend(h);
  }

  prepare(ctx: Ctx): void {
    if (this.#unavailable !== undefined || this.#closed || this.#idle.length > 0 || this.#next) return;
    // A failure here is met again, and reported, by the acquire() that finds no network ready.
    this.#next = this.#create(ctx).catch(() => undefined);
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const h of this.#idle.splice(0)) this.#destroyLater(h);
    const next = this.#next;
    this.#next = undefined;
    if (next) this.#track(next.then((h) => h && destroy(h)));
    while (this.#dying.size) await Promise.all(this.#dying);
    if (this.#teardownError !== undefined) throw this.#teardownError;
  }

  keepAtMost(n: number): void {
    // One begun now is one the build's end does not wait for.
    while (this.#idle.length > n) this.#destroyLater(this.#idle.shift()!);
  }

  #destroyLater(h: Held): void {
    this.#track(destroy(h));
  }

  #track(teardown: Promise<void | undefined>): void {
    const p: Promise<void> = teardown.then(
      () => undefined,
      (e: unknown) => void (this.#teardownError ??= e),
    );
    this.#dying.add(p);
    void p.finally(() => this.#dying.delete(p));
  }

  #lend(h: Held): SandboxNetwork {
    let released = false;
    return {
      path: h.ns.path,
      verify: () => h.ns.verify(),
      release: async (reusable) => {
        if (released) return;
        released = true;
        if (reusable && !this.#closed && h.slirp.alive() && this.#idle.length < MAX_IDLE) this.#idle.push(h);
        else this.#destroyLater(h);
      },
    };
  }

  async #create(ctx: Ctx): Promise<Held | undefined> {
    let ns: NetNamespace | undefined;
    try {
      ns = await createNetNamespace(ctx.signal, { tap: SLIRP_INTERFACE });
      const slirp = await startSlirp(ns.path, { signal: ctx.signal });
      this.#worked = true;
      return { ns, slirp };
    } catch (e) {
      await ns?.close();
      if (ctx.signal.aborted || isAbortError(e)) throw e;
      const message = e instanceof Error ? e.message : String(e);
      // A setup that worked before in this build and fails now is a fault, not a missing feature.
      if (this.#worked || !(e instanceof NetNamespaceError || e instanceof SlirpError)) {
        throw new BuildError('RUNTIME', `cannot set up the network of a RUN step: ${message}`, { cause: e });
      }
      if (this.#unavailable === undefined) {
        this.#unavailable = message;
        warnHostNetwork(ctx, message);
      }
      return undefined;
    }
  }
}

/** The one line a build prints when its RUN steps get the host's network instead of a private one. */
function warnHostNetwork(ctx: Ctx, reason: string): void {
  ctx.events.emit({ type: 'warning', message: `RUN steps use the host's network: no private network can be made here (${reason})`, at: Date.now() });
}

/**
 * For a runner that makes no namespaces (chroot isolation): a `sandbox` request runs on the
 * host's network, with the host's resolv.conf, and the build is told so once (one instance per
 * build, as the runner).
 */
export class HostNetworkFallback {
  #warned = false;
  constructor(private readonly reason: string) {}

  /** `req` as it runs here; the host's resolv.conf for it is written into `dir` (the caller's temp dir). */
  async apply(req: ExecRequest, dir: string, ctx: Ctx): Promise<ExecRequest> {
    if (req.network !== 'sandbox') return req;
    if (!this.#warned) {
      this.#warned = true;
      warnHostNetwork(ctx, this.reason);
    }
    return { ...req, network: 'host', mounts: await withHostResolvConf(req.mounts, dir) };
  }
}

async function destroy(h: Held): Promise<void> {
  try {
    await h.slirp.stop();
  } finally {
    await h.ns.close();
  }
}

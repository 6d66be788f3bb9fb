import * as assert from 'uvu/assert';
import type { Test } from 'uvu';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { buildBusyboxBase } from './base-image.js';
import { mountsUnder } from './mounts.js';
import { runcContainers } from './run-tool.js';
import { verifyStore } from './verify-store.js';

/** A temp work dir and, inside it, a tsbuild root that already holds the `busybox` base image. */
export interface BuildRoot {
  readonly work: string;
  readonly root: string;
  /** A new context dir under `work` with a Dockerfile (unless undefined) and files. */
  context(dockerfile: string | undefined, files?: Readonly<Record<string, string>>): Promise<string>;
}

/**
 * Registers an integration suite's hooks: make the root and its base image before, remove
 * everything after, and after each test assert what every real build must leave behind —
 * no mounts, no runc containers, a consistent store.
 */
export function useBuildRoot(test: Test, prefix: string): BuildRoot {
  const state = { work: '', root: '' };
  test.before(async () => {
    try {
      state.work = await mkdtemp(join(tmpdir(), `tsbuild-${prefix}-`));
      state.root = join(state.work, 'root');
      await buildBusyboxBase(state.root);
    } catch (e) {
      // uvu counts the suite's tests as not passed but never prints a before-hook error.
      console.error(`[${prefix}] setup failed:`, e);
      throw e;
    }
  });
  test.after(async () => {
    await rm(state.work, { recursive: true, force: true });
  });
  test.after.each(async () => {
    const mounts = mountsUnder(state.root);
    const containers = await runcContainers(join(state.root, 'runc'));
    const store = await verifyStore(state.root);
    // uvu drops an after.each error that follows a failed test (the hook runs again in its catch
    // and that throw escapes the runner), so the findings are printed before asserting.
    if (mounts.length || containers.length || store.length) {
      console.error(`[${prefix}] left behind: ${JSON.stringify({ mounts, containers, store })}`);
    }
    assert.equal(mounts, [], 'no mount left behind');
    assert.equal(containers, [], 'no runc container left behind');
    assert.equal(store, [], 'store consistent, nothing half-written');
  });
  return {
    get work() {
      return state.work;
    },
    get root() {
      return state.root;
    },
    async context(dockerfile, files = {}) {
      const dir = await mkdtemp(join(state.work, 'ctx-'));
      if (dockerfile !== undefined) await writeFile(join(dir, 'Dockerfile'), dockerfile);
      for (const [p, content] of Object.entries(files)) {
        await mkdir(dirname(join(dir, p)), { recursive: true });
        await writeFile(join(dir, p), content);
      }
      return dir;
    },
  };
}

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The audit of every host-side filesystem call, as a ratchet: each source file that calls
 * node:fs is listed with how many calls it makes and why they cannot be steered by a build
 * input. A new call anywhere (or a new file) fails this test until someone has checked it and
 * updated the table: a path inside a rootfs, upperdir, layer, cache mount, context or output
 * must go through src/oci/in-root.ts, never through a join.
 *
 * Classes:
 * - in-root: paths inside untrusted trees are resolved by src/oci/in-root.ts; other calls act
 *   on directories tsbuild made itself.
 * - walk: walks an untrusted tree down from a resolved root with lstat/readdir and acts only
 *   on what lstat showed (never follows a link).
 * - store: only paths tsbuild lays out under its root (blobs, layers, locks, memos, temp dirs).
 * - user: paths the person running tsbuild named (flags, config, docker's config.json).
 * - host: fixed files of the host (/proc/self, /etc/subuid) or the process's own.
 */
type Class = 'in-root' | 'walk' | 'store' | 'user' | 'host';
const AUDITED: Record<string, [calls: number, cls: Class, why: string]> = {
  'src/orchestrator/build-registry.ts': [6, 'store', 'build registration files under <root>/builds'],
  'src/orchestrator/clamp-image-timestamps.ts': [3, 'store', 'rewrite memo files under <root>/cache/timestamp-rewrites, named by digest'],
  'src/orchestrator/squash-layers.ts': [7, 'store', 'a temp dir under <root>/tmp filled by applyLayer (in-root), and memo files under <root>/cache/squash named by digest'],
  'src/orchestrator/cache-transfer/cache-export.ts': [1, 'user', '--cache-to type=local,dest='],
  'src/orchestrator/cache-transfer/cache-import.ts': [2, 'store', 'empties a cache mount dir tsbuild is creating (names from readdir of it) when a restore fails'],
  'src/orchestrator/gc.ts': [14, 'store', 'prune walks and deletes only store entries by digest'],
  'src/orchestrator/git-commit-time.ts': [2, 'user', 'realpath of the context dir, then stat of .git in it and its parents (git reads the repository, its config overridden)'],
  'src/orchestrator/named-contexts.ts': [2, 'user', '--build-context paths; the other match is the layout ContentStore\'s stat of a digest (no host path)'],
  'src/orchestrator/run-build.ts': [3, 'user', 'the context dir named by the flag; the Dockerfile and .dockerignore are read with readFileInOwnDir; a layer\'s own blob by its diffID in the content store'],
  'src/orchestrator/worker.ts': [10, 'store', 'the root layout and its tmp dirs'],
  'src/cli/build-action.ts': [2, 'user', '--iidfile, --metadata-file'],
  'src/cli/config-file.ts': [1, 'user', 'tsbuild.toml'],
  'src/cli/input-file.ts': [3, 'user', 'load -i FILE (a FIFO read through the event loop)'],
  'src/cli/bundle-loader.ts': [5, 'host', "tsbuild's own CLI bundle and the code cache beside it, found from the launcher's own URL"],
  'src/cli/launch.ts': [1, 'host', "tsbuild's own package.json (packageFile)"],
  'src/cli/main.ts': [2, 'user', "whether the first word is a path; tsbuild's own package.json (packageFile)"],
  'src/cli/run-cli.ts': [1, 'user', 'the state root named by flag'],
  'src/cli/output-dest.ts': [4, 'user', 'resolves a named output path as the kernel would, to refuse system directories'],
  'src/cli/registry-commands.ts': [1, 'user', 'login --password-stdin'],
  'src/cli/remote-context.ts': [7, 'in-root', 'its own temp dir; the git subdir resolved with resolveInRoot'],
  'src/cli/run-secrets.ts': [3, 'user', '--secret src= files (checked; small regular ones read once for masking)'],
  'src/cli/stdin-input.ts': [10, 'in-root', 'its own temp dir; the archive is applied with applyLayer (and read again for its newest file time)'],
  'src/exporter/archive-file.ts': [6, 'user', 'output archive file named by dest= (streamed into an existing link, pipe or device, else a temp file renamed)'],
  'src/exporter/local.ts': [1, 'in-root', 'creates dest (a flag); every entry through applyLayer'],
  'src/exporter/local-provenance.ts': [2, 'in-root', 'provenance.json placed with atInRoot: the leaf removed (not followed) and created with O_EXCL'],
  'src/exporter/oci-layout.ts': [1, 'user', 'type=oci,tar=false dest directory'],
  'src/images/analyze-source.ts': [3, 'user', 'analyze IMAGE: whether it names a layout dir or an archive file; a temp layout in the worker\'s private tmp dir'],
  'src/exporter/compress-image.ts': [5, 'store', 'compressed-layer memo entries under <cache>/compressed-layers, named by a digest'],
  'src/images/load-archive.ts': [1, 'user', 'load -i FILE'],
  'src/images/run-image.ts': [2, 'in-root', 'its own etc temp dir; WORKDIR via mkdirInRoot'],
  'src/oci/content-store.ts': [18, 'store', 'blobs by digest, temp files it names'],
  'src/oci/decompress.ts': [1, 'walk', 'reads the magic bytes of a file already resolved'],
  'src/oci/image-layout.ts': [16, 'store', 'index.json, oci-layout and blobs of a layout'],
  'src/oci/in-root.ts': [17, 'in-root', 'the primitive itself (readFileInRoot reads /etc/passwd and /etc/group for RUN users)'],
  'src/oci/index-lock.ts': [11, 'store', 'lock files beside index.json'],
  'src/oci/lchown-mapped.ts': [2, 'in-root', 'lchown of a path its caller resolved inside its root (never follows a link)'],
  'src/oci/layer/apply.ts': [14, 'in-root', 'every entry, parent, whiteout and hardlink target through atInRoot/resolvedInRoot'],
  'src/oci/layer/blob.ts': [1, 'store', 'layer blob temp files'],
  'src/oci/layer/diff.ts': [2, 'walk', 'upperdir walk: readdir, streamed reads of large regular files; lstat, small reads and readlink in native inspectFiles (single names under an O_NOFOLLOW directory fd, only regular files opened)'],
  'src/package-file.ts': [1, 'host', 'finds files of tsbuild\'s own package (package.json, the native addon and helper)'],
  'src/remote/credentials.ts': [2, 'user', "docker's config.json"],
  'src/remote/extra-ca-certs.ts': [1, 'user', 'the PEM file NODE_EXTRA_CA_CERTS names (the user\'s environment)'],
  'src/remote/push.ts': [1, 'store', 'blob reads by digest'],
  'src/runtime/chroot-runner.ts': [25, 'in-root', 'what a RUN gets in place of mounts: every path in the working root via atInRoot/resolveInRoot (no symlink followed after the RUN); mount sources are tsbuild-made or resolved by run-mounts'],
  'src/runtime/clone-entry.ts': [11, 'walk', 'copies one entry lstat showed, from a quiet tree (layer dir, working dir after its RUN, mount source) to a new path tsbuild names'],
  'src/runtime/copy-snapshotter.ts': [16, 'store', 'working dirs under <root>/copies it made and names by random id, its owner files, uppers under tmp'],
  'src/runtime/materialize-layers.ts': [5, 'walk', 'walks a committed layer dir with lstat/readdir onto a working dir tsbuild made; nothing followed'],
  'src/runtime/stat-manifest.ts': [8, 'walk', 'walks a working dir no process runs in with lstat/readdir; copies only what lstat showed into an upper it made'],
  'src/runtime/current-caps.ts': [1, 'host', '/proc/self/status'],
  'src/runtime/whiteout-check.ts': [2, 'store', 'a probe device node tsbuild makes and removes in its own tmp dir; statfs of the root'],
  'src/cli/info-command.ts': [1, 'store', 'creates the state root (0700) for the probe cache'],
  'src/runtime/etc-files.ts': [4, 'store', 'hosts/resolv.conf written in a temp dir tsbuild made (or the runc bundle dir); the host resolv.conf read'],
  'src/runtime/net-namespace.ts': [5, 'host', 'the namespace fd the addon made (fstat, close), /proc/self, and readlinks of /proc/self/ns/net and of its own fd'],
  'src/runtime/layer-store.ts': [25, 'store', 'layer dirs by digest, removed by one rename with their short links (and the time of their committed marker, set from an imported cache or kept by a crash recovery); unpack through applyLayer; the overlay-xattrs format file under the root'],
  'src/runtime/unsynced-layers.ts': [10, 'store', 'the unsynced-layers marker, its lock and the recovered times under layers/; the committed markers of layer dirs, judged after a crash (LayerStore removes them); the boot id from /proc'],
  'src/runtime/isolation-probe.ts': [11, 'host', '/proc/self/{status,uid_map}, /proc/1/cgroup, container marker files; the probe cache and a probe dir tsbuild makes under the root'],
  'src/runtime/host-file.ts': [1, 'host', 'fixed files of the host and the process (/proc sysctls, /proc/self/uid_map, the boot id), and small files of the store (a layer\'s short link name, the recovered layer times)'],
  'src/runtime/overlay.ts': [13, 'store', 'mount dirs tsbuild made (work, upper, merged)'],
  'src/runtime/owner.ts': [4, 'store', 'owner files of mount and copy dirs; /proc/PID/stat, /proc/self/stat'],
  'src/runtime/platform-support.ts': [1, 'host', '/proc/sys/fs/binfmt_misc'],
  'src/runtime/cgroup-host.ts': [3, 'host', '/proc/self/mountinfo, /proc/self/cgroup and cgroupfs files'],
  'src/runtime/subordinate-ids.ts': [1, 'host', '/etc/subuid and /etc/subgid'],
  'src/runtime/userns-reexec.ts': [5, 'host', '/proc/self/status, /proc/sys sysctls, /proc/PID/{uid,gid}_map of our child; the state root (a flag)'],
  'src/runtime/runc.ts': [10, 'store', "bundle dir and config.json tsbuild writes; runc's own state dir (its container ids, whether one is left) and state.json, and the cgroup files it names"],
  'src/solver/cache-store.ts': [10, 'store', 'cache records by key digest'],
  'src/solver/context-checksum.ts': [7, 'walk', 'context walk: lstat, readdir, reads of regular files only (small ones opened O_NOFOLLOW into one scratch buffer)'],
  'src/solver/explain.ts': [3, 'store', 'step history files'],
  'src/solver/http-memo.ts': [3, 'store', 'memo files by URL digest'],
  'src/solver/memo-sweep.ts': [3, 'store', 'memo directories'],
  'src/solver/ops/commit-layer.ts': [2, 'store', 'the upperdir tsbuild made, renamed into the layer store'],
  'src/solver/ops/copy-sources.ts': [4, 'in-root', 'sources and globs through atInRoot/resolvedInRoot/resolveInRoot'],
  'src/solver/ops/parents-sources.ts': [3, 'in-root', 'COPY --parents: stat and walk below each source directory through resolvedInRoot'],
  'src/solver/ops/copy-tree.ts': [13, 'walk', 'copies from a resolved source to a resolved destination; lstat first, replaces (never follows) what it finds (a socket as an empty file, O_EXCL); plain files through native copyFiles, which opens single names under O_NOFOLLOW directory fds, O_EXCL, and leaves anything else to this path'],
  'src/solver/ops/exec.ts': [2, 'in-root', 'its own etc temp dir; WORKDIR via mkdirInRoot'],
  'src/solver/ops/file.ts': [6, 'in-root', 'destinations via mkdirInRoot/atInRoot; archives via applyLayer'],
  'src/solver/ops/http.ts': [7, 'store', 'a fresh temp dir; the file name is one checked segment, opened O_EXCL'],
  'src/solver/ops/image.ts': [2, 'store', 'layer dirs; unpack through applyLayer'],
  'src/solver/ops/mount-stubs.ts': [10, 'in-root', 'stubs and copied-up parents re-resolved after the RUN'],
  'src/solver/ops/run-mounts.ts': [24, 'in-root', 'bind/cache sources via resolveInRoot; cache, secret dirs and cache generation pointers tsbuild made; ssh socket is a flag'],
  'src/solver/ops/ssh-proxy.ts': [1, 'store', 'chmod of the proxy socket it made in its own temp dir'],
  'src/solver/selection-memo.ts': [3, 'store', 'memo files by digest'],
  'src/solver/stat-cache.ts': [6, 'store', 'stat cache files'],
};

const repo = join(fileURLToPath(new URL('.', import.meta.url)), '../../../..');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Calls of the functions a file imports from node:fs or node:fs/promises. */
function fsCalls(text: string): number {
  const names = new Set<string>();
  for (const m of text.matchAll(/import\s*(?:type\s*)?\{([^}]*)\}\s*from\s*'node:fs(?:\/promises)?'/g)) {
    for (const part of m[1]!.split(',')) {
      const t = part.trim();
      if (t && !t.startsWith('type ')) names.add(t.split(/\s+as\s+/).pop()!);
    }
  }
  let n = 0;
  for (const name of names) n += [...text.matchAll(new RegExp(`\\b${name}\\(`, 'g'))].length;
  return n;
}

test('every node:fs call site is audited (see the table for how each is protected)', () => {
  const found: Record<string, number> = {};
  for (const file of sources(join(repo, 'src'))) {
    const text = readFileSync(file, 'utf8');
    // A namespace or default import would hide its calls from the count.
    assert.not.match(text, /import\s+(\*\s+as\s+\w+|\w+)\s+from\s+'node:fs(\/promises)?'/, `${file}: import named fs functions`);
    const n = fsCalls(text);
    if (n > 0) found[relative(repo, file)] = n;
  }
  const expected = Object.fromEntries(Object.entries(AUDITED).map(([f, [n]]) => [f, n]));
  assert.equal(found, expected, 'a new or changed host-side fs call: check it uses src/oci/in-root.ts for untrusted paths, then update AUDITED');
});

test.run();

// Writes dist/bin/tsbuild-cli.cjs.cache, the V8 code cache src/cli/bundle-loader.ts loads the CLI
// bundle with. V8 caches the functions compiled when the cache is made, so this runs, in one
// process, what start-up-bound commands run: help, and as root a small build twice (cold, with
// a COPY and a RUN, then the fully cached rebuild whose time is mostly start-up). Elsewhere (not root, or no
// CAP_SYS_ADMIN: a build would re-run this script in a user namespace) only `--help` trains;
// the rest compiles at run time as without a cache.
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadBundle, writeCodeCache } from '../dist/src/cli/bundle-loader.js';

const bundle = fileURLToPath(new URL('../dist/bin/tsbuild-cli.cjs', import.meta.url));
const loaded = loadBundle(bundle, { codeCache: false, sourceMaps: false });

/** Runs one command line in this process, its output dropped; returns its exit code. */
async function quietly(argv) {
  const out = process.stdout.write;
  const err = process.stderr.write;
  process.stdout.write = process.stderr.write = () => true;
  try {
    return await loaded.exports.main(argv);
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
}

async function mayBuild() {
  if (process.getuid?.() !== 0) return false;
  const capEff = /^CapEff:\s*([0-9a-f]+)$/m.exec(await readFile('/proc/self/status', 'utf8'))?.[1];
  return capEff !== undefined && (BigInt(`0x${capEff}`) & (1n << 21n)) !== 0n; // CAP_SYS_ADMIN
}

// A verb that opens the store (even `build --help`) would, without root and CAP_SYS_ADMIN, run
// process.argv[1] (this script) again in a user namespace: only `--help` trains there.
await quietly(['--help']);
if (await mayBuild()) {
  await quietly(['build', '--help']);
  const dir = await mkdtemp(join(tmpdir(), 'tsbuild-train-'));
  try {
    const ctx = join(dir, 'ctx');
    await mkdir(ctx);
    await writeFile(join(ctx, 'a'), 'a\n');
    // With a static busybox (Debian's busybox-static, which the README installs) a RUN too.
    const run = await copyFile('/bin/busybox', join(ctx, 'busybox')).then(
      () => 'COPY busybox /bin/busybox\nRUN ["/bin/busybox", "cp", "/a", "/c"]\n',
      () => '',
    );
    await writeFile(join(ctx, 'Dockerfile'), `FROM scratch\nCOPY a /a\nENV A=1\nWORKDIR /w\nCOPY a /w/b\nLABEL l=1\n${run}`);
    const build = ['--root', join(dir, 'root'), 'build', '--progress', 'quiet', '-t', 'train', ctx];
    for (let i = 0; i < 2; i++) {
      const code = await quietly(build);
      if (code !== 0) {
        process.stderr.write(`train-code-cache: the training build exited ${code}; the code cache covers less\n`);
        break;
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
writeCodeCache(loaded, bundle);
// A build may leave timers behind (the stat cache's save, a last-use time): the cache is written.
process.exit(0);

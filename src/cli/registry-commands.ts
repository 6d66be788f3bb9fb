import { isolationSetting } from './isolation-setting.js';
import { writeFile } from 'node:fs/promises';
import { Command, Option } from 'commander';
import type { Ctx } from '../ctx.js';
import { BuildError } from '../errors.js';
import { hostPlatform } from '../oci/image.js';
import { parseReference } from '../oci/reference.js';
import { DockerConfigCredentials, normalizeRegistryKey } from '../remote/credentials.js';
import { parsePlatform } from '../oci/platform.js';
import type { GlobalOptions } from './globals.js';
import { progressSink } from './progress.js';
import { dockerConfigPath, registryOptions } from './registry-options.js';
import { stateRoot } from './state-root.js';
import { checkOutputDest } from './output-dest.js';
import { networkPolicy, registrySettings } from './config-file.js';
import { MediaType } from '../oci/media-types.js';
import { compressionFromFlags, withCompressionFlags, type CompressionFlags } from './compression-flags.js';

/** `tsbuild pull | push | login | logout`. Each sets exit code 0 on success; failures throw to main(). */
export function registryCommands(globals: GlobalOptions, signal: AbortSignal, setExit: (code: number) => void): Command[] {
  const ctx = (quiet: boolean): Ctx => ({ signal, events: progressSink(quiet ? 'quiet' : 'plain', (s) => process.stderr.write(s)) });
  // tsbuild.toml's insecure registries and mirrors apply to every verb, as they do to build.
  const options = () => registryOptions(process.env, { ...registrySettings(globals.settings?.config ?? {}), ...networkPolicy(globals.settings?.config ?? {}) });

  const deps = () => import('./registry-deps.js');

  const pull = new Command('pull')
    .description('pull an image from a registry into the local store')
    .argument('<ref>', 'image reference: name[:tag], host[:port]/repo[:tag], repo@sha256:…')
    .option('--platform <os/arch[/variant]>', 'platform to pull from a multi-platform image (default: this host)')
    .option('-q, --quiet', 'print only the manifest digest')
    .action(async (refText: string, flags: { platform?: string; quiet?: boolean }) => {
      const { openWorker, pullImage, RegistryClient } = await deps();
      const ref = parseReference(refText);
      const platform = flags.platform ? parsePlatform(flags.platform) : hostPlatform();
      const worker = await openWorker(stateRoot(globals.root, process.env), { privateTmp: true, isolation: isolationSetting(globals, process.env) });
      const client = new RegistryClient(options());
      try {
        const pulled = await pullImage(client, ref, worker.blobs, platform, ctx(true));
        await worker.images.tag(ref.toString(), pulled.manifest);
        if (flags.quiet) process.stdout.write(pulled.manifest.digest + '\n');
        else process.stdout.write(`${ref.toString()}: pulled ${pulled.manifest.digest} (${pulled.downloaded} blobs downloaded)\n`);
      } finally {
        await client.close();
        await worker.close();
      }
      setExit(0);
    });

  const push = new Command('push')
    .description('push an image from the local store to a registry')
    .argument('<name>', 'image in the local store')
    .argument('[dest]', 'registry reference to push to (default: NAME)')
    .option('--metadata-file <file>', 'write the pushed digest as JSON (BuildKit keys)')
    .option('-q, --quiet', 'print only the manifest digest')
    .action(async (name: string, dest: string | undefined, flags: { metadataFile?: string; quiet?: boolean } & CompressionFlags) => {
      const compression = compressionFromFlags(flags);
      const { openWorker, exportRegistry, readImage, RegistryClient, compressImage, compressedLayersDir } = await deps();
      const local = parseReference(name).toString();
      if (flags.metadataFile) await checkOutputDest(flags.metadataFile, 'file', '--metadata-file');
      const worker = await openWorker(stateRoot(globals.root, process.env), { privateTmp: true, isolation: isolationSetting(globals, process.env) });
      const client = new RegistryClient(options());
      try {
        const desc = await worker.images.resolve(local);
        if (!desc) throw new BuildError('IMAGE_NOT_FOUND', `image ${name} (${local}) is not in the local store`, { hint: 'list images with `tsbuild images`' });
        const c = ctx(true);
        // Stored layers a build made are uncompressed: the registry gets them as gzip by default, as BuildKit pushes.
        const r = await exportRegistry(client, worker.images, await compressImage(worker.blobs, compressedLayersDir(worker.dirs), desc, compression, c.signal), dest ?? name, c);
        if (flags.metadataFile) {
          // An index has no single config: the key is left out then, as BuildKit does for multi-platform pushes.
          const single = r.descriptor.mediaType === MediaType.ociManifest || r.descriptor.mediaType === MediaType.dockerManifest;
          const config = single ? (await readImage(worker.blobs, desc)).configDescriptor.digest : undefined;
          const meta = {
            'containerimage.digest': r.descriptor.digest,
            ...(config ? { 'containerimage.config.digest': config } : {}),
            'containerimage.descriptor': r.descriptor,
            'image.name': r.name,
          };
          await writeFile(flags.metadataFile, JSON.stringify(meta, null, 2) + '\n');
        }
        if (flags.quiet) process.stdout.write(r.descriptor.digest + '\n');
        else process.stdout.write(`${r.name}: pushed ${r.descriptor.digest} (${r.uploaded} uploaded, ${r.mounted} mounted, ${r.skipped} already present)\n`);
      } finally {
        await client.close();
        await worker.close();
      }
      setExit(0);
    });
  withCompressionFlags(push);

  const login = new Command('login')
    .description("log in to a registry; the credentials go to docker's config.json (or its credential helper)")
    .argument('[server]', 'registry host[:port]', 'docker.io')
    .requiredOption('-u, --username <user>', 'user name')
    .addOption(new Option('-p, --password <password>', 'password (prefer --password-stdin)').conflicts('passwordStdin'))
    .option('--password-stdin', 'read the password from stdin')
    .action(async (server: string, flags: { username: string; password?: string; passwordStdin?: boolean }) => {
      const { RegistryClient } = await deps();
      const host = normalizeRegistryKey(server);
      let password = flags.password;
      if (flags.passwordStdin) password = (await readStdin()).replace(/\r?\n$/, '');
      if (password === undefined || password === '') throw new BuildError('USAGE', 'login: give the password with --password-stdin or -p');
      const cred = { username: flags.username, password };
      // Check the credentials before saving them, as docker login does.
      const client = new RegistryClient({ ...options(), credentials: { get: async () => cred } });
      let identityToken: string | undefined;
      try {
        ({ identityToken } = await client.host(host).ping(signal, { offline: true }));
      } finally {
        await client.close();
      }
      // A token server that hands out refresh tokens gets those stored instead of the password.
      await new DockerConfigCredentials(dockerConfigPath(process.env)).store(host, identityToken ? { username: cred.username, identityToken } : cred);
      process.stdout.write(`Login Succeeded (${host})\n`);
      setExit(0);
    });

  const logout = new Command('logout')
    .description("remove a registry's credentials from docker's config.json")
    .argument('[server]', 'registry host[:port]', 'docker.io')
    .action(async (server: string) => {
      const host = normalizeRegistryKey(server);
      const found = await new DockerConfigCredentials(dockerConfigPath(process.env)).erase(host);
      process.stdout.write(found ? `Removed login credentials for ${host}\n` : `Not logged in to ${host}\n`);
      setExit(0);
    });

  return [pull, push, login, logout];
}

/** All of stdin (a pipe or socket; /dev/stdin can't be opened when it's a socket). */
async function readStdin(): Promise<string> {
  let text = '';
  for await (const chunk of process.stdin) text += (chunk as Buffer).toString('utf8');
  return text;
}

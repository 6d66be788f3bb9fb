import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { useBuildRoot } from '../../helpers/build-root.js';
import { tsbuildOk } from '../../helpers/cli.js';

/**
 * BuildKit's dockerfile_client_test.go, where it does not need the gateway client API: the
 * built-in Dockerfile frontend builds a Dockerfile whose `# syntax=` names the upstream
 * Dockerfile frontend (BuildKit's gateway.v0 with source dockerfile.v0 loads no image).
 */
const test = suite('buildkit-port: checks (dockerfile_client_test.go)');
const env = useBuildRoot(test, 'bk-client');

test('testGatewayBuiltinSyntaxSourceDockerfileV0: # syntax=docker/dockerfile-upstream:master builds with the built-in frontend', async () => {
  const ctx = await env.context('\n# syntax=docker/dockerfile-upstream:master\nFROM busybox AS build\nRUN echo -n ok > /out\nFROM scratch\nCOPY --from=build /out /out\n');
  const dest = join(env.work, 'client-out');
  await tsbuildOk(['--root', env.root, 'build', '--progress', 'plain', '--output', `type=local,dest=${dest}`, ctx]);
  assert.is((await readFile(join(dest, 'out'), 'utf8')).trim(), 'ok');
});

test.run();

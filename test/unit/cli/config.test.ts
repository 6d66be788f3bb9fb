import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BuildError } from '../../../src/errors.js';
import { gcPolicy, loadConfig, registrySettings } from '../../../src/cli/config-file.js';
import { parseConfig } from '../../../src/cli/config-parse.js';
import { parseByteSize } from '../../../src/byte-size.js';
import { parseDurationMs } from '../../../src/cli/units.js';
import { effectiveSettings } from '../../../src/cli/config-command.js';

const GOOD = `# tsbuild.toml
root = "/srv/tsbuild"
max-parallelism = 3
progress = "plain"

[gc]
keep-storage = "2GiB"
keep-duration = "7d"

[registry."docker.io"]
mirrors = ["mirror.local:5000"]

[registry."localhost:5000"]
insecure = true
`;

const parse = suite('config: parse and validate');

parse('a full file: values and the line of every key', () => {
  const { config, lines } = parseConfig(GOOD, 'tsbuild.toml');
  assert.equal(config, {
    root: '/srv/tsbuild',
    'max-parallelism': 3,
    progress: 'plain',
    gc: { 'keep-storage': '2GiB', 'keep-duration': '7d' },
    registry: { 'docker.io': { mirrors: ['mirror.local:5000'] }, 'localhost:5000': { insecure: true } },
  });
  assert.is(lines.get('max-parallelism'), 3);
  assert.is(lines.get('gc.keep-duration'), 8);
  assert.is(lines.get('registry."localhost:5000".insecure'), 14);
  assert.equal(registrySettings(config), { insecure: ['localhost:5000'], mirrors: { 'docker.io': ['mirror.local:5000'] } });
});

/** [file text, expected message]: every rejection names file:line and the key. */
const BAD: [string, string][] = [
  ['root = "/a"\nmax-parallelism = "4"\n', 'c.toml:2: max-parallelism: expected a positive integer, got string "4"'],
  ['max-parallelism = 0\n', 'c.toml:1: max-parallelism: expected a positive integer, got number 0'],
  ['progress = "fancy"\n', 'c.toml:1: progress: expected one of auto, tty, plain, rawjson, quiet, got string "fancy"'],
  ['\nroots = "/a"\n', 'c.toml:2: roots: unknown key (did you mean root?)'],
  ['[gc]\nkeep-storage = "lots"\n', 'c.toml:2: gc.keep-storage: expected a size such as "10GB" or "512MiB", got string "lots"'],
  ['[gc]\n\nkeep-size = "1GB"\n', 'c.toml:3: gc.keep-size: unknown key; valid keys: keep-storage, keep-duration'],
  ['[registry."r.io"]\ninsecure = "yes"\n', 'c.toml:2: registry."r.io".insecure: expected true or false, got string "yes"'],
  ['[registry."r.io"]\nmirrors = "m"\n', 'c.toml:2: registry."r.io".mirrors: expected an array of host names, got string "m"'],
  ['[registry."r.io"]\nhttp = true\n', 'c.toml:2: registry."r.io".http: unknown key; valid keys: mirrors, insecure'],
  ['gc = 3\n', 'c.toml:1: gc: expected a table, got number 3'],
  ['root = "/a"\nroot = "/b"\n', 'c.toml:2: invalid TOML'],
];

parse('unknown keys and wrong types are usage errors with file:line', () => {
  for (const [text, want] of BAD) {
    try {
      parseConfig(text, 'c.toml');
      assert.unreachable(`accepted: ${text}`);
    } catch (e) {
      assert.instance(e, BuildError);
      assert.is((e as BuildError).code, 'USAGE');
      assert.ok((e as BuildError).message.startsWith(want), `${JSON.stringify(text)}:\n  got  ${(e as BuildError).message}\n  want ${want}`);
    }
  }
});

parse('units', () => {
  // 1024-based throughout, as docker's --keep-storage and buildkitd read sizes.
  assert.is(parseByteSize('10GB'), 10 * 1024 ** 3);
  assert.is(parseByteSize('512MiB'), 512 * 1024 ** 2);
  assert.is(parseByteSize('150kb'), 150 * 1024);
  assert.is(parseByteSize('1000'), 1000);
  assert.is(parseByteSize('ten'), undefined);
  assert.is(parseDurationMs('48h'), 48 * 3600_000);
  assert.is(parseDurationMs('1h30m'), 90 * 60_000);
  assert.is(parseDurationMs('7d'), 7 * 86_400_000);
  assert.is(parseDurationMs('2w'), undefined);
  assert.equal(gcPolicy({ gc: { 'keep-storage': '1GB', 'keep-duration': '7d' } }), { keepStorage: 1024 ** 3, olderThanMs: 7 * 86_400_000 });
  assert.equal(gcPolicy({}), {});
});

parse('the validator and schemas/tsbuild/config.schema.json name the same keys', async () => {
  const schema = JSON.parse(await readFile(fileURLToPath(new URL('../../../../schemas/tsbuild/config.schema.json', import.meta.url)), 'utf8')) as {
    properties: Record<string, { properties?: Record<string, unknown> }> & { registry: { additionalProperties: { properties: Record<string, unknown> } } };
  };
  assert.equal(Object.keys(schema.properties).sort(), ['build', 'gc', 'max-parallelism', 'network', 'progress', 'registry', 'root', 'unpack']);
  assert.equal(Object.keys(schema.properties.build!.properties!).sort(), ['allow', 'isolation']);
  parseConfig('[build]\nallow = ["network.host", "security.insecure"]\n', 'x.toml');
  assert.equal(Object.keys(schema.properties.network!.properties!).sort(), ['connect-timeout', 'idle-timeout', 'response-timeout', 'retry-budget']);
  parseConfig('[network]\nconnect-timeout = "1s"\nresponse-timeout = "2s"\nidle-timeout = "3s"\nretry-budget = "4s"\n', 'x.toml');
  assert.equal(Object.keys(schema.properties.gc!.properties!).sort(), ['keep-duration', 'keep-storage']);
  assert.equal(Object.keys(schema.properties.registry.additionalProperties.properties).sort(), ['insecure', 'mirrors']);
  // Every schema key is accepted by the validator.
  parseConfig(GOOD, 'x.toml');
});

parse('[build] allow grants entitlements; an unknown one or a non-array is named with file and line', () => {
  assert.equal(parseConfig('[build]\nallow = ["network.host"]\n', 'x.toml').config, { build: { allow: ['network.host'] } });
  assert.throws(() => parseConfig('[build]\nallow = ["network.hots"]\n', 'x.toml'), /x\.toml:2: build\.allow: unknown entitlement string "network\.hots" \(known: security\.insecure, network\.host\)/);
  assert.throws(() => parseConfig('[build]\nallow = "network.host"\n', 'x.toml'), /x\.toml:2: build\.allow: expected an array/);
  assert.throws(() => parseConfig('[build]\nalow = []\n', 'x.toml'), /x\.toml:2: build\.alow/);
});

const prec = suite('config: precedence and sources');
let dir = '';
prec.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tsbuild-config-'));
  await writeFile(join(dir, 'a.toml'), GOOD);
});
prec.after(() => rm(dir, { recursive: true, force: true }));

prec('--config beats $TSBUILD_CONFIG; a named file must exist; the default may be absent', async () => {
  await writeFile(join(dir, 'b.toml'), 'root = "/from-b"\n');
  assert.is((await loadConfig(join(dir, 'a.toml'), { TSBUILD_CONFIG: join(dir, 'b.toml') })).config.root, '/srv/tsbuild');
  assert.is((await loadConfig(undefined, { TSBUILD_CONFIG: join(dir, 'b.toml') })).config.root, '/from-b');
  try {
    await loadConfig(join(dir, 'nope.toml'), {});
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /nope\.toml: no such file/);
  }
});

prec('root: --root, then $TSBUILD_ROOT, then the file; each value names its source', async () => {
  const loaded = await loadConfig(join(dir, 'a.toml'), {});
  const get = (s: ReturnType<typeof effectiveSettings>, k: string) => s.find((x) => x.key === k)!;
  const fileOnly = effectiveSettings(undefined, join(dir, 'a.toml'), {}, loaded);
  assert.equal(get(fileOnly, 'root'), { key: 'root', value: '/srv/tsbuild', source: `${join(dir, 'a.toml')}:2` });
  assert.equal(get(fileOnly, 'config-file'), { key: 'config-file', value: join(dir, 'a.toml'), source: '--config' });
  assert.equal(get(fileOnly, 'gc.keep-storage').source, `${join(dir, 'a.toml')}:7`);
  assert.equal(get(fileOnly, 'registry."docker.io".mirrors'), { key: 'registry."docker.io".mirrors', value: ['mirror.local:5000'], source: `${join(dir, 'a.toml')}:11` });
  const env = effectiveSettings(undefined, join(dir, 'a.toml'), { TSBUILD_ROOT: '/env' }, loaded);
  assert.equal(get(env, 'root'), { key: 'root', value: '/env', source: '$TSBUILD_ROOT' });
  const flag = effectiveSettings('/flag', join(dir, 'a.toml'), { TSBUILD_ROOT: '/env' }, loaded);
  assert.equal(get(flag, 'root'), { key: 'root', value: '/flag', source: '--root' });
  const none = effectiveSettings(undefined, undefined, {}, { config: {}, lines: new Map() });
  assert.equal(get(none, 'progress'), { key: 'progress', value: 'auto', source: 'default' });
});

parse.run();
prec.run();

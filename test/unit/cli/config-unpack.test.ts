import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { BuildError } from '../../../src/errors.js';
import { expansionLimits } from '../../../src/cli/config-file.js';
import { parseConfig } from '../../../src/cli/config-parse.js';
import { DEFAULT_EXPANSION_LIMITS } from '../../../src/oci/layer/expansion-guard.js';

const test = suite('config: [unpack]');

test('keys parse into ExpansionLimits; absent keys take the defaults', () => {
  const { config, lines } = parseConfig('[unpack]\nmax-expanded-bytes = "64MiB"\nmax-expansion-ratio = 20\nmax-entries = 5000\n', 't.toml');
  assert.equal(config.unpack, { 'max-expanded-bytes': '64MiB', 'max-expansion-ratio': 20, 'max-entries': 5000 });
  assert.is(lines.get('unpack.max-entries'), 4);
  assert.equal(expansionLimits(config), { maxExpandedBytes: 64 * 1024 * 1024, maxExpansionRatio: 20, maxEntries: 5000 });
  assert.equal(expansionLimits({}), DEFAULT_EXPANSION_LIMITS);
  assert.equal(expansionLimits(parseConfig('[unpack]\nmax-expanded-bytes = 1048576\n', 't.toml').config).maxExpandedBytes, 1048576);
});

const BAD: [string, string][] = [
  ['[unpack]\nmax-expanded-bytes = "huge"\n', 't.toml:2: unpack.max-expanded-bytes: expected a size such as "100GiB", got string "huge"'],
  ['[unpack]\nmax-expanded-bytes = "0"\n', 't.toml:2: unpack.max-expanded-bytes: expected a size such as "100GiB", got string "0"'],
  ['[unpack]\nmax-expansion-ratio = 0.5\n', 't.toml:2: unpack.max-expansion-ratio: expected a number of at least 1, got number 0.5'],
  ['[unpack]\nmax-entries = -1\n', 't.toml:2: unpack.max-entries: expected a positive integer, got number -1'],
  ['[unpack]\nmax_entries = 3\n', 't.toml:2: unpack.max_entries: unknown key (did you mean max-entries?)'],
];
for (const [text, message] of BAD) {
  test(`rejects: ${message}`, () => {
    try {
      parseConfig(text, 't.toml');
      assert.unreachable();
    } catch (e) {
      assert.instance(e, BuildError);
      assert.is((e as BuildError).message, message);
    }
  });
}

test('the schema names the keys the validator accepts', async () => {
  const schema = JSON.parse(await readFile(fileURLToPath(new URL('../../../../schemas/tsbuild/config.schema.json', import.meta.url)), 'utf8')) as {
    properties: { unpack: { properties: Record<string, unknown> } };
  };
  assert.equal(Object.keys(schema.properties.unpack.properties).sort(), ['max-entries', 'max-expanded-bytes', 'max-expansion-ratio']);
});

test.run();

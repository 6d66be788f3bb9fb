import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

const test = suite('schemas: generated types');
const repo = fileURLToPath(new URL('../../../../', import.meta.url));

test('committed types match what the schemas generate (npm run gen:types)', async () => {
  try {
    await promisify(execFile)(process.execPath, ['schemas/generate.mjs', '--check'], { cwd: repo });
  } catch (e) {
    assert.unreachable(`generated types drifted; run npm run gen:types and commit:\n${(e as { stderr?: string }).stderr ?? e}`);
  }
});

test.run();

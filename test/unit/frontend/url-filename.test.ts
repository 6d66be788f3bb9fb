import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { urlFilename } from '../../../src/frontend/convert-copy.js';

// BuildKit's dockerfile2llb: path.Base of the decoded URL path, `__unnamed__` without a usable one.
const cases: [string, string][] = [
  ['https://example.com/a/pkg.tar.gz', 'pkg.tar.gz'],
  ['https://example.com/a/pkg.tar.gz?x=1#frag', 'pkg.tar.gz'],
  ['https://example.com/dir/', 'dir'],
  ['https://example.com/', '__unnamed__'],
  ['https://example.com', '__unnamed__'],
  ['https://example.com/a%20b', 'a b'],
  // Decoded before the last segment is taken: never a path.
  ['http://h/..%2F..%2F..%2Ftmp%2Fx', 'x'],
  ['http://h/a/..%2F..', '__unnamed__'],
  ['http://h/%2E%2E', '__unnamed__'],
  ['http://h/.', '__unnamed__'],
  ['http://h/a%5C..%5Cb', '__unnamed__'],
  ['http://h/a%00b', '__unnamed__'],
  ['http://h/%2F', '__unnamed__'],
  ['http://h/bad%zz', '__unnamed__'],
];

for (const [url, name] of cases) {
  test(`urlFilename ${url}`, () => {
    assert.is(urlFilename(url), name);
  });
}

test.run();

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parseReference } from '../../../src/oci/reference.js';
import { BuildError } from '../../../src/errors.js';

const test = suite('parseReference');
const D = 'sha256:' + 'a'.repeat(64);

// input → [domain, path, tag, digest, full, familiar]
const valid: [string, string, string, string | undefined, string | undefined, string, string][] = [
  ['busybox', 'docker.io', 'library/busybox', 'latest', undefined, 'docker.io/library/busybox:latest', 'busybox:latest'],
  ['busybox:1.36', 'docker.io', 'library/busybox', '1.36', undefined, 'docker.io/library/busybox:1.36', 'busybox:1.36'],
  ['library/busybox', 'docker.io', 'library/busybox', 'latest', undefined, 'docker.io/library/busybox:latest', 'busybox:latest'],
  ['docker.io/library/busybox:latest', 'docker.io', 'library/busybox', 'latest', undefined, 'docker.io/library/busybox:latest', 'busybox:latest'],
  ['index.docker.io/foo/bar', 'docker.io', 'foo/bar', 'latest', undefined, 'docker.io/foo/bar:latest', 'foo/bar:latest'],
  ['team/app:v1', 'docker.io', 'team/app', 'v1', undefined, 'docker.io/team/app:v1', 'team/app:v1'],
  ['localhost/x', 'localhost', 'x', 'latest', undefined, 'localhost/x:latest', 'localhost/x:latest'],
  ['localhost:5000/a/b:t', 'localhost:5000', 'a/b', 't', undefined, 'localhost:5000/a/b:t', 'localhost:5000/a/b:t'],
  ['127.0.0.1:5000/x', '127.0.0.1:5000', 'x', 'latest', undefined, '127.0.0.1:5000/x:latest', '127.0.0.1:5000/x:latest'],
  ['quay.io/org/img', 'quay.io', 'org/img', 'latest', undefined, 'quay.io/org/img:latest', 'quay.io/org/img:latest'],
  ['[::1]:5000/x:y', '[::1]:5000', 'x', 'y', undefined, '[::1]:5000/x:y', '[::1]:5000/x:y'],
  [`busybox@${D}`, 'docker.io', 'library/busybox', undefined, D, `docker.io/library/busybox@${D}`, `busybox@${D}`],
  [`busybox:1@${D}`, 'docker.io', 'library/busybox', '1', D, `docker.io/library/busybox:1@${D}`, `busybox:1@${D}`],
  ['my-app_x__z/a.b--c', 'docker.io', 'my-app_x__z/a.b--c', 'latest', undefined, 'docker.io/my-app_x__z/a.b--c:latest', 'my-app_x__z/a.b--c:latest'],
  ['docker.io/library/a/b', 'docker.io', 'library/a/b', 'latest', undefined, 'docker.io/library/a/b:latest', 'library/a/b:latest'],
  ['Example.com/x', 'Example.com', 'x', 'latest', undefined, 'Example.com/x:latest', 'Example.com/x:latest'],
  ['hello:Tag_1.x-y', 'docker.io', 'library/hello', 'Tag_1.x-y', undefined, 'docker.io/library/hello:Tag_1.x-y', 'hello:Tag_1.x-y'],
];

for (const [input, domain, path, tag, digest, full, familiar] of valid) {
  test(`valid: ${input}`, () => {
    const r = parseReference(input);
    assert.is(r.domain, domain);
    assert.is(r.path, path);
    assert.is(r.tag, tag);
    assert.is(r.digest, digest);
    assert.is(r.toString(), full);
    assert.is(String(r), full);
    assert.is(r.familiar, familiar);
    assert.is(r.name, `${domain}/${path}`);
    // Normalization is idempotent.
    assert.is(parseReference(full).toString(), full);
  });
}

const invalid: [string, RegExp][] = [
  ['', /empty/],
  ['BusyBox', /lowercase/],
  ['docker.io/Library/x', /lowercase/],
  ['a b', /whitespace/],
  ['foo/bar!', /component/],
  ['foo//bar', /component/],
  ['-foo', /component/],
  ['foo:', /tag/],
  ['foo:-x', /tag/],
  ['foo:' + 'a'.repeat(129), /tag/],
  ['foo@sha256:abc', /digest/],
  ['foo@md5:' + 'a'.repeat(32), /digest/],
  ['foo/', /empty|component/],
  ['a.com/' + 'x'.repeat(260), /longer/],
  ['-bad.com/x', /registry host/],
];

for (const [input, re] of invalid) {
  test(`invalid: ${JSON.stringify(input.slice(0, 40))}`, () => {
    try {
      parseReference(input);
      assert.unreachable('should throw');
    } catch (e) {
      assert.instance(e, BuildError);
      assert.is((e as BuildError).code, 'INVALID_REFERENCE');
      assert.match((e as Error).message, re);
    }
  });
}

test.run();

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { rootCertificates } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { childEnv, deferredCaTrust, DEFERRED_ENV } from '../../../src/remote/extra-ca-certs.js';

// Two of node's own roots stand in for a private CA bundle: any PEM certificates do.
const [a, b] = [rootCertificates[0]!, rootCertificates[1]!];

test('deferred NODE_EXTRA_CA_CERTS: node\'s roots plus every certificate of the file; nothing when not deferred', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tsbuild-extra-ca-'));
  try {
    const file = join(dir, 'bundle.pem');
    await writeFile(file, `# a comment\n${a}\n\n${b}\n`);
    const { ca } = deferredCaTrust({ [DEFERRED_ENV]: file });
    assert.is(ca?.length, rootCertificates.length + 2);
    assert.equal(ca?.slice(-2), [a, b]);
    assert.equal(deferredCaTrust({}), {});
    assert.equal(deferredCaTrust({ NODE_EXTRA_CA_CERTS: file }), {}, 'a variable node read itself is node\'s');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('an unreadable file: a warning and node\'s own roots, as node does', () => {
  const write = process.stderr.write;
  let said = '';
  process.stderr.write = ((s: string) => ((said += s), true)) as typeof process.stderr.write;
  try {
    assert.equal(deferredCaTrust({ [DEFERRED_ENV]: '/nonexistent/ca.pem' }), {});
  } finally {
    process.stderr.write = write;
  }
  assert.match(said, /warning: ignoring extra certificates from NODE_EXTRA_CA_CERTS=\/nonexistent\/ca\.pem: ENOENT/);
});

test('programs tsbuild starts get NODE_EXTRA_CA_CERTS back, and not the deferred name', () => {
  assert.equal(childEnv({ PATH: '/bin', [DEFERRED_ENV]: '/etc/ca.pem' }), { PATH: '/bin', NODE_EXTRA_CA_CERTS: '/etc/ca.pem' });
  const env = { PATH: '/bin' };
  assert.is(childEnv(env), env);
});

test.run();

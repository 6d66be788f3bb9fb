/** --secret / --ssh / --allow parsing (buildx syntax); env secrets are read at parse time. */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllow, parseSecrets, parseSsh } from '../../../src/cli/run-secrets.js';

const test = suite('cli: --secret, --ssh, --allow');

test('file and env secrets; id alone falls back to the variable, then the file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'secrets-'));
  try {
    const f = join(dir, 's');
    writeFileSync(f, 'x');
    const m = parseSecrets([`id=a,src=${f}`, 'id=b,env=B_VAR', 'id=C_VAR', `id=d,type=file,source=${f}`, 'id=e,type=env,src=B_VAR'], { B_VAR: 'bee', C_VAR: 'sea' });
    assert.equal(m.get('a'), { file: f });
    assert.equal(m.get('b'), { value: Buffer.from('bee') });
    assert.equal(m.get('C_VAR'), { value: Buffer.from('sea') });
    assert.equal(m.get('d'), { file: f });
    assert.equal(m.get('e'), { value: Buffer.from('bee') });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('secret errors name the flag', () => {
  assert.throws(() => parseSecrets(['src=/x'], {}), /--secret "src=\/x": id is required/);
  assert.throws(() => parseSecrets(['id=a,src=/no/such/file'], {}), /file \/no\/such\/file not found/);
  assert.throws(() => parseSecrets(['id=a,env=UNSET_VAR'], {}), /UNSET_VAR is not set/);
  assert.throws(() => parseSecrets(['id'], {}), /expected key=value/);
});

test('--ssh default takes $SSH_AUTH_SOCK; --allow knows security.insecure and network.host', () => {
  assert.equal([...parseSsh(['default', 'other=/run/o.sock'], { SSH_AUTH_SOCK: '/tmp/agent' })], [['default', '/tmp/agent'], ['other', '/run/o.sock']]);
  assert.throws(() => parseSsh(['default'], {}), /SSH_AUTH_SOCK is not set/);
  assert.equal(parseAllow(['security.insecure']), { allowInsecure: true, allowNetworkHost: false, allowDebugSecrets: false });
  assert.equal(parseAllow(['network.host']), { allowInsecure: false, allowNetworkHost: true, allowDebugSecrets: false });
  assert.equal(parseAllow(['network.host,security.insecure']), { allowInsecure: true, allowNetworkHost: true, allowDebugSecrets: false });
  assert.equal(parseAllow(['debug.secrets']), { allowInsecure: false, allowNetworkHost: false, allowDebugSecrets: true });
  assert.equal(parseAllow([]), { allowInsecure: false, allowNetworkHost: false, allowDebugSecrets: false });
  assert.throws(() => parseAllow(['device']), /unknown entitlement/);
});

test.run();

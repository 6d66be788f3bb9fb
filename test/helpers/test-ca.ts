import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tool } from './run-tool.js';

/** PEM files of a private certificate authority and a server certificate it signed. */
export interface TestCa {
  /** The CA's certificate: what a client must trust (e.g. NODE_EXTRA_CA_CERTS). */
  readonly caFile: string;
  /** The server's certificate (leaf only) and its key. */
  readonly certFile: string;
  readonly keyFile: string;
}

/**
 * Makes, with openssl, a CA and a certificate it signs for `127.0.0.1` (subjectAltName IP, as
 * Node checks the IP against the SAN, never the CN), both valid two days. Unlike a self-signed
 * leaf this is how a private PKI looks: the server's certificate verifies once the CA is trusted.
 * All files go in `dir`, which the caller removes.
 */
export async function makeTestCa(dir: string): Promise<TestCa> {
  const caFile = join(dir, 'ca.pem');
  const caKey = join(dir, 'ca-key.pem');
  const certFile = join(dir, 'server.pem');
  const keyFile = join(dir, 'server-key.pem');
  const csr = join(dir, 'server.csr');
  const ext = join(dir, 'server.ext');
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await tool('openssl', ['req', '-x509', ...ec, '-keyout', caKey, '-out', caFile, '-days', '2', '-subj', '/CN=tsbuild test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  await tool('openssl', ['req', ...ec, '-keyout', keyFile, '-out', csr, '-subj', '/CN=127.0.0.1']);
  await writeFile(ext, 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n');
  await tool('openssl', ['x509', '-req', '-in', csr, '-CA', caFile, '-CAkey', caKey, '-CAcreateserial', '-out', certFile, '-days', '2', '-extfile', ext]);
  return { caFile, certFile, keyFile };
}

// Certificates for the tests of HTTPS stores (S3 on s3rver, REST on rclone), made with openssl.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

export interface CertificateFiles {
  /** PEM of the certificate: also what a client trusts with --cacert. */
  readonly cert: string;
  /** PEM of its private key. */
  readonly key: string;
}

/**
 * A self-signed certificate for 127.0.0.1 and localhost in `dir`, as self-hosted MinIO or rest-server
 * set-ups use (openssl req -x509 makes it a CA too, so it can be trusted as it is).
 */
export async function selfSignedCertificate(dir: string, name = 'server'): Promise<CertificateFiles> {
  const cert = path.join(dir, `${name}-cert.pem`);
  const key = path.join(dir, `${name}-key.pem`);
  await promisify(execFile)('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
    '-subj', `/CN=coffer test ${name}`, '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', key, '-out', cert,
  ]);
  return { cert, key };
}

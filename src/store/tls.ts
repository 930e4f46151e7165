// TLS for the stores that speak HTTPS (S3, REST). Self-hosted servers (MinIO, Garage, rest-server)
// often have a certificate of a private CA or a self-signed one: --cacert FILE trusts it besides the
// usual roots, --insecure-tls accepts any certificate (the traffic stays encrypted, but anyone on the
// path could pose as the server). A certificate that fails the check gets a message that says which
// of the two to use.
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import tls from 'node:tls';
import { StoreError } from './store.ts';

export interface TlsOptions {
  /** PEM files with certificates to trust besides the default ones (--cacert, COFFER_CACERT). */
  readonly caFiles?: readonly string[];
  /** Accept any server certificate (--insecure-tls). */
  readonly insecure?: boolean;
}

/** The certificates of a PEM file; a file without one is refused, since it surely is the wrong file. */
function readCertificates(file: string, location: string): string[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new StoreError('permanent', `${location}: cannot read the CA certificate file ${file} (${(err as NodeJS.ErrnoException).code}); check --cacert`, { cause: err });
  }
  const pems = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  try {
    for (const pem of pems) new crypto.X509Certificate(pem);
  } catch (err) {
    throw new StoreError('permanent', `${location}: ${file} holds a damaged certificate (${(err as Error).message}); check --cacert`, { cause: err });
  }
  if (pems.length === 0) throw new StoreError('permanent', `${location}: ${file} holds no PEM certificate (-----BEGIN CERTIFICATE-----); check --cacert`);
  return pems;
}

/** The options for https.Agent (or an SDK's) that implement `options`; {} for the defaults. */
export function tlsAgentOptions(options: TlsOptions | undefined, location: string): https.AgentOptions {
  const extra = (options?.caFiles ?? []).flatMap((file) => readCertificates(file, location));
  return {
    ...(extra.length > 0 ? { ca: [...tls.getCACertificates('default'), ...extra] } : {}),
    ...(options?.insecure ? { rejectUnauthorized: false } : {}),
  };
}

// OpenSSL's verification failures, as Node reports them in err.code.
const UNTRUSTED = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'INVALID_CA',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * The one-line explanation of a TLS failure, or undefined if `err` is none: an untrusted certificate
 * ('denied': retrying will not help), or a server that does not speak TLS on that port.
 */
export function describeTlsError(err: unknown, action: string): StoreError | undefined {
  const { code, message = '' } = err as { code?: string; message?: string };
  if (code && UNTRUSTED.has(code)) {
    return new StoreError(
      'denied',
      // Node's own advice after ';' (run Node.js with --use-system-ca) is not what a Coffer user can act on.
      `${action}: the server's TLS certificate is not trusted (${code}: ${message.split(';')[0]!.replace(/\s+/g, ' ').trim()}); give its CA certificate with --cacert FILE, or skip the check with --insecure-tls`,
      { cause: err },
    );
  }
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG' || /wrong version number|packet length too long/i.test(message)) {
    return new StoreError('permanent', `${action}: the server does not speak TLS on that port; write http:// if it serves plain HTTP`, { cause: err });
  }
  return undefined;
}

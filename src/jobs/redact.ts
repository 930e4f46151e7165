// Secrets must never reach the job database or a log file: both are plain files that users paste into
// bug reports. Everything written by this layer (event data, error messages, log lines) passes through here.

export const REDACTED = '[redacted]';

/** Words that mark a key as holding a secret ('accessKeyId', 'AWS_SECRET_ACCESS_KEY', 'X-Amz-Signature'). */
const SECRET_WORDS = new Set([
  'password',
  'passphrase',
  'passwd',
  'pass',
  'pwd',
  'secret',
  'token',
  'key',
  'apikey',
  'credential',
  'credentials',
  'authorization',
  'auth',
  'cookie',
  'signature',
  'sig',
]);

/** Splits 'accessKeyId', 'aws_secret_access_key' and 'X-Amz-Signature' into lower-case words. */
function words(key: string): string[] {
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter((w) => w.length > 0);
}

export function isSecretKey(key: string): boolean {
  return words(key).some((w) => SECRET_WORDS.has(w));
}

// `scheme://user:pass@host`: the whole user-info goes, a bare `sftp://user@host` stays (not a secret).
// The password may hold a raw '/' (pasted secret keys do), so it runs to the '@': in the rare URL
// with a port and an '@' in its path this cuts too much, which is the safe way to be wrong.
const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@:]*:[^\s@]*@/gi;
// `?token=…&X-Amz-Signature=…` in pre-signed and webhook URLs.
const QUERY_PARAM = /([?&])([^=&\s#]+)=([^&\s#]*)/g;
// `rclone::s3,access_key_id=…,secret_access_key=…:bucket`: parameters of an rclone connection string.
const CONNECTION_PARAM = /(,)([a-z][a-z0-9_]*)=("[^"]*"|'[^']*'|[^,:\s]*)/gi;

export function redactString(text: string): string {
  return text
    .replace(URL_CREDENTIALS, '$1')
    .replace(QUERY_PARAM, (whole, sep: string, name: string) => (isSecretKey(name) ? `${sep}${name}=${REDACTED}` : whole))
    .replace(CONNECTION_PARAM, (whole, sep: string, name: string) => (isSecretKey(name) ? `${sep}${name}=${REDACTED}` : whole));
}

/** A JSON-safe copy of `value` with secret-named keys blanked and credentials cut out of strings. */
export function redact(value: unknown): unknown {
  return copy(value, new WeakSet());
}

function copy(value: unknown, seen: WeakSet<object>): unknown {
  switch (typeof value) {
    case 'string':
      return redactString(value);
    case 'bigint':
      return value.toString();
    case 'function':
    case 'symbol':
    case 'undefined':
      return undefined;
    case 'object':
      break;
    default:
      return value;
  }
  if (value === null) return null;
  if (seen.has(value)) return '[circular]';
  seen.add(value);
  try {
    if (value instanceof Date) return value.toISOString();
    if (ArrayBuffer.isView(value)) return `[${value.byteLength} bytes]`;
    if (value instanceof Error) return copy(errorFields(value), seen);
    if (Array.isArray(value)) return value.map((v) => copy(v, seen) ?? null);
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const redacted = isSecretKey(k) && v !== undefined && v !== null ? REDACTED : copy(v, seen);
      if (redacted !== undefined) out[k] = redacted;
    }
    return out;
  } finally {
    // A value seen twice side by side is shared, not circular.
    seen.delete(value);
  }
}

/** An error's message and name are not enumerable: pick the fields worth keeping (no stack). */
function errorFields(err: Error): Record<string, unknown> {
  const { code, kind, errno, syscall } = err as Error & Record<string, unknown>;
  return { name: err.name, message: err.message, code, kind, errno, syscall, cause: err.cause };
}

/** An error's message, safe to store and show. */
export function errorText(err: unknown): string {
  return redactString(err instanceof Error ? err.message : String(err));
}

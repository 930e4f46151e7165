// The OpenSSH known_hosts format (sshd(8), "SSH_KNOWN_HOSTS FILE FORMAT"), enough to check a server's
// host key the way ssh does: lines `[marker] hosts keytype base64-key [comment]`, where hosts is a
// comma-separated list of names, `[name]:port` for a port other than 22, wildcards (* ?), negations
// (!pattern) and hashed names (|1|base64-salt|base64-HMAC-SHA1-of-the-name). @revoked lines name keys
// that must never be accepted. @cert-authority lines are skipped: host certificates are not supported,
// so a host known only through a certificate authority counts as unknown.
import crypto from 'node:crypto';

export interface KnownHost {
  /** 1-based, for messages that send the user to the line. */
  readonly line: number;
  readonly revoked: boolean;
  readonly hosts: readonly string[];
  readonly keyType: string;
  /** The key in SSH wire format, as a server presents it. */
  readonly key: Buffer;
}

export type HostKeyVerdict =
  | { readonly status: 'known' }
  | { readonly status: 'unknown' }
  | { readonly status: 'revoked'; readonly entry: KnownHost }
  /** The host is known with other keys: the entry is one with the presented key's type if any. */
  | { readonly status: 'changed'; readonly entry: KnownHost };

/** The entries of a known_hosts file; lines that are malformed or not understood are skipped, as ssh does. */
export function parseKnownHosts(text: string): KnownHost[] {
  const entries: KnownHost[] = [];
  text.split('\n').forEach((raw, index) => {
    const fields = raw.trim().split(/\s+/);
    if (!fields[0] || fields[0].startsWith('#')) return;
    const marker = fields[0].startsWith('@') ? fields.shift() : undefined;
    if (marker !== undefined && marker !== '@revoked') return;
    const [hosts, keyType, base64] = fields;
    if (!hosts || !keyType || !base64) return;
    const key = Buffer.from(base64, 'base64');
    // The blob names its own type: a mismatch means a damaged line (or an SSH1 key: "bits exponent modulus").
    if (keyTypeOf(key) !== keyType) return;
    entries.push({ line: index + 1, revoked: marker === '@revoked', hosts: hosts.split(','), keyType, key });
  });
  return entries;
}

/** How known_hosts names a server: `host` on port 22, `[host]:port` otherwise; lower case, as ssh looks it up. */
export function knownHostName(host: string, port: number): string {
  const bare = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  return port === 22 ? bare : `[${bare}]:${port}`;
}

/** Whether an entry's host list names `name` (from knownHostName): a pattern matches and no negated one does. */
export function matchesHost(entry: KnownHost, name: string): boolean {
  let matched = false;
  for (const pattern of entry.hosts) {
    if (pattern.startsWith('!')) {
      if (matchesPattern(pattern.slice(1), name)) return false;
    } else if (matchesPattern(pattern, name)) {
      matched = true;
    }
  }
  return matched;
}

function matchesPattern(pattern: string, name: string): boolean {
  if (pattern.startsWith('|1|')) {
    const [salt, hash] = pattern.slice(3).split('|');
    if (!salt || !hash) return false;
    const expected = Buffer.from(hash, 'base64');
    const actual = crypto.createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest();
    return expected.length === actual.length && crypto.timingSafeEqual(expected, actual);
  }
  const regex = pattern
    .toLowerCase()
    .split('')
    .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[\\^$.|+()[\]{}]/g, '\\$&')))
    .join('');
  return new RegExp(`^${regex}$`).test(name);
}

/**
 * Checks the key a server presented against the entries. A revoked key is refused whatever host its
 * line names. A host known only by keys of other types counts as changed, not unknown: the client
 * asks for the known types first (knownKeyTypes), so a server that offers none of them is suspect.
 */
export function checkHostKey(entries: readonly KnownHost[], name: string, key: Buffer): HostKeyVerdict {
  const revoked = entries.find((entry) => entry.revoked && entry.key.equals(key));
  if (revoked) return { status: 'revoked', entry: revoked };
  const forHost = entries.filter((entry) => !entry.revoked && matchesHost(entry, name));
  if (forHost.some((entry) => entry.key.equals(key))) return { status: 'known' };
  const type = keyTypeOf(key);
  const changed = forHost.find((entry) => entry.keyType === type) ?? forHost[0];
  return changed ? { status: 'changed', entry: changed } : { status: 'unknown' };
}

/** The key types known_hosts holds for `name`, to ask the server for one of them first, as ssh does. */
export function knownKeyTypes(entries: readonly KnownHost[], name: string): Set<string> {
  return new Set(entries.filter((entry) => !entry.revoked && matchesHost(entry, name)).map((entry) => entry.keyType));
}

/** The line that records `key` for `name`. */
export function knownHostLine(name: string, key: Buffer): string {
  return `${name} ${keyTypeOf(key)} ${key.toString('base64')}`;
}

/** The type a wire-format key names in its first field (a length-prefixed string), or undefined. */
export function keyTypeOf(key: Buffer): string | undefined {
  if (key.length < 4) return undefined;
  const length = key.readUInt32BE(0);
  if (length === 0 || length > 64 || 4 + length > key.length) return undefined;
  return key.toString('latin1', 4, 4 + length);
}

/** The fingerprint ssh shows for a key: SHA256: and the unpadded base64 of its digest. */
export function fingerprint(key: Buffer): string {
  return `SHA256:${crypto.createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

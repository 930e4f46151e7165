// Parsing and display of remote locations (S3, SFTP, REST, rclone). Kept apart from the stores, whose
// modules load the AWS SDK, ssh2 or HTTP/2 plumbing: opening a location checks it and names it without
// loading any of them.
import os from 'node:os';
import { StoreError } from './store.ts';

const S3_SYNTAX = 's3:host[:port]/bucket[/prefix] (https) or s3:http(s)://host[:port]/bucket[/prefix]';
const SFTP_SYNTAX = 'sftp:[user@]host:/absolute/path, sftp:[user@]host:path/in/home, or sftp://[user@]host[:port]/absolute/path (/~/path for the home directory)';
const REST_SYNTAX = 'rest:http(s)://[user@]host[:port]/[path/]';
const RCLONE_SYNTAX = 'rclone:remote:path (a remote of rclone config, or a connection string such as rclone::local:/srv/backup)';

export interface S3Location {
  /** 'https://host[:port]' */
  readonly endpoint: string;
  readonly bucket: string;
  /** '' or the key prefix ending in '/'. */
  readonly prefix: string;
}

/** An SFTP location as written: what it leaves out comes from ~/.ssh/config or the defaults. */
export interface SftpLocation {
  readonly user?: string;
  /** A host name, an address, or a Host alias of ~/.ssh/config. */
  readonly host: string;
  readonly port?: number;
  /** Absolute, or relative to the login directory. */
  readonly root: string;
}

export interface SftpTarget {
  readonly user: string;
  readonly host: string;
  readonly port: number;
  /** Absolute, or relative to the login directory (from a '/~/' location). */
  readonly root: string;
}

export interface RestLocation {
  /** 'https://host[:port]/path/', always ending in '/', without credentials. */
  readonly url: string;
  readonly user?: string;
  readonly password?: string;
}

function invalid(message: string, syntax: string): StoreError {
  return new StoreError('permanent', `${message}; expected ${syntax}`);
}

/** A %-escaped part of a location; an escape that is not UTF-8 ('%ff') is a malformed location, not a crash. */
function unescape(part: string, syntax: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw invalid('the location has a %-escape that is not UTF-8', syntax);
  }
}

/** A URL's scheme followed by ':', as opposed to 'host:port' (a colon then a digit). */
const SCHEME = /^([a-z][a-z0-9+.-]*):(?!\d)/i;

export function parseS3Location(location: string): S3Location {
  if (!location.startsWith('s3:')) throw invalid('an S3 location starts with s3:', S3_SYNTAX);
  let rest = location.slice(3);
  const scheme = SCHEME.exec(rest)?.[1]?.toLowerCase();
  if (rest.startsWith('//')) throw invalid("s3://bucket is the AWS CLI's form; for AWS write s3:s3.amazonaws.com/bucket (or s3:s3.REGION.amazonaws.com/bucket)", S3_SYNTAX);
  if (scheme !== undefined && scheme !== 'http' && scheme !== 'https') throw invalid(`the S3 location has scheme ${scheme}:`, S3_SYNTAX);
  if (scheme !== undefined && !rest.slice(scheme.length + 1).startsWith('//')) throw invalid(`the S3 location lacks the // after ${scheme}:`, S3_SYNTAX);
  // Without a scheme, as restic reads it: HTTPS.
  if (scheme === undefined) rest = `https://${rest}`;
  let url: URL;
  try {
    url = new URL(rest);
  } catch {
    throw invalid('the S3 location is not a valid URL', S3_SYNTAX);
  }
  // Refused rather than used, so secrets never end up in config files, process lists or messages.
  if (url.username || url.password) throw invalid('the S3 location must not hold credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)', S3_SYNTAX);
  if (url.search || url.hash) throw invalid('the S3 location must not have a query or fragment', S3_SYNTAX);
  const [bucket = '', ...rest2] = unescape(url.pathname, S3_SYNTAX).split('/').filter(Boolean);
  if (!bucket) throw invalid(`the S3 location s3:${url.origin} names no bucket`, S3_SYNTAX);
  return { endpoint: url.origin, bucket, prefix: rest2.map((part) => `${part}/`).join('') };
}

/** The normalized form of a parsed S3 location, which names the store in messages. */
export function s3DisplayLocation({ endpoint, bucket, prefix }: S3Location): string {
  return `s3:${endpoint}/${bucket}${prefix ? `/${prefix.slice(0, -1)}` : ''}`;
}

/** Both SFTP syntaxes: Coffer's URL (sftp://[user@]host[:port]/path) and restic's sftp:[user@]host:path. */
export function parseSftpLocation(location: string): SftpLocation {
  if (/^sftp:(?!\/\/)/i.test(location)) return parseScpStyle(location.slice(5));
  let url: URL;
  try {
    url = new URL(location);
  } catch {
    throw invalid('the SFTP location is not a valid URL', SFTP_SYNTAX);
  }
  if (url.protocol !== 'sftp:') throw invalid('an SFTP location starts with sftp:', SFTP_SYNTAX);
  // Refused rather than used, so a password never ends up in config files, process lists or messages.
  if (url.password) throw invalid('the SFTP location must not hold a password (set COFFER_SFTP_PASSWORD)', SFTP_SYNTAX);
  if (!url.hostname) throw invalid('the SFTP location names no host', SFTP_SYNTAX);
  if (url.search || url.hash) throw invalid('the SFTP location must not have a query or fragment', SFTP_SYNTAX);
  const pathname = unescape(url.pathname, SFTP_SYNTAX).replace(/\/+$/, '');
  let root: string;
  if (pathname === '/~') root = '.';
  else if (pathname.startsWith('/~/')) root = pathname.slice(3);
  else root = pathname;
  if (!root) throw invalid(`the SFTP location sftp://${url.host} names no directory`, SFTP_SYNTAX);
  return {
    ...(url.username ? { user: unescape(url.username, SFTP_SYNTAX) } : {}),
    // URL keeps the brackets of an IPv6 address, which the socket does not want.
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    ...(url.port ? { port: Number(url.port) } : {}),
    root,
  };
}

/** restic's (and scp's) form, after 'sftp:': [user@]host:path, host possibly [IPv6]. */
function parseScpStyle(spec: string): SftpLocation {
  const match = /^(?:([^@:/\s]+)@)?(\[[^\]\s]+\]|[^@:/\s[\]]+):(.*)$/.exec(spec);
  if (!match) throw invalid('the SFTP location names no host, or no path after host:', SFTP_SYNTAX);
  const [, user, bracketed, given] = match as unknown as [string, string | undefined, string, string];
  const host = bracketed.replace(/^\[(.*)\]$/, '$1');
  const path = given.replace(/(.)\/+$/, '$1');
  let root: string;
  if (path === '~' || path === '~/') root = '.';
  else if (path.startsWith('~/')) root = path.slice(2);
  else root = path;
  if (!root) throw invalid(`the SFTP location sftp:${bracketed}: names no directory`, SFTP_SYNTAX);
  return { ...(user ? { user } : {}), host, root };
}

/** The normalized form of an SFTP target (user and home directory spelled out), which names the store in messages. */
export function sftpDisplayLocation({ user, host, port, root }: SftpTarget): string {
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return `sftp://${user}@${shownHost}${port === 22 ? '' : `:${port}`}/${root.startsWith('/') ? root.slice(1) : `~/${root}`}`;
}

/** The login name used when neither the location nor ~/.ssh/config gives one, as for ssh. */
export function localUser(): string {
  return os.userInfo().username;
}

export function parseRestLocation(location: string): RestLocation {
  if (!location.startsWith('rest:')) throw invalid('a REST location starts with rest:', REST_SYNTAX);
  let url: URL;
  try {
    url = new URL(location.slice(5));
  } catch {
    throw invalid('the REST location is not a valid URL', REST_SYNTAX);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalid(`the REST location has scheme ${url.protocol}`, REST_SYNTAX);
  if (!url.hostname) throw invalid('the REST location names no host', REST_SYNTAX);
  if (url.search || url.hash) throw invalid('the REST location must not have a query or fragment', REST_SYNTAX);
  const user = unescape(url.username, REST_SYNTAX) || undefined;
  const password = unescape(url.password, REST_SYNTAX) || undefined;
  url.username = '';
  url.password = '';
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  return { url: url.href, ...(user ? { user } : {}), ...(password ? { password } : {}) };
}

/** The REST location without its password (the user name stays: it says whose repository this is). */
export function restDisplayLocation({ url, user }: RestLocation): string {
  if (!user) return `rest:${url}`;
  const shown = new URL(url);
  shown.username = encodeURIComponent(user);
  return `rest:${shown.href}`;
}

/** The rclone remote after 'rclone:', handed to `rclone serve restic --stdio` as it is. */
export function parseRcloneLocation(location: string): string {
  if (!location.startsWith('rclone:')) throw invalid('an rclone location starts with rclone:', RCLONE_SYNTAX);
  const remote = location.slice(7);
  if (!remote.trim()) throw invalid('the rclone location names no remote', RCLONE_SYNTAX);
  // rclone would read it as an option.
  if (remote.startsWith('-')) throw invalid('an rclone remote cannot start with -', RCLONE_SYNTAX);
  if (/[\0\n\r]/.test(remote)) throw invalid('the rclone location holds a control character', RCLONE_SYNTAX);
  return remote;
}

/**
 * The rclone location for messages. A connection string (':s3,access_key_id=…,secret_access_key=…:bucket')
 * may hold secrets, and which parameters do is the backend's business, so every value is hidden.
 */
export function rcloneDisplayLocation(remote: string): string {
  const match = /^(:?[^:,]*)((?:,[^:]*)?)(:.*)?$/s.exec(remote);
  if (!match?.[2]) return `rclone:${remote}`;
  const params = match[2].replace(/=("[^"]*"|'[^']*'|[^,]*)/g, '=***');
  return `rclone:${match[1]}${params}${match[3] ?? ''}`;
}

/** Locations across a network: they are retried, and get more uploads in parallel. */
export function isRemoteLocation(location: string): boolean {
  return /^(s3|sftp|rest|rclone):/.test(location);
}

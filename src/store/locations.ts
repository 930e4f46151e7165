// Parsing and display of S3 and SFTP locations. Kept apart from the stores, whose modules load the AWS
// SDK and ssh2: opening a location checks it and names it without loading either.
import os from 'node:os';
import { StoreError } from './store.ts';

const S3_SYNTAX = 's3:http(s)://host[:port]/bucket[/prefix]';
const SFTP_SYNTAX = 'sftp://[user@]host[:port]/absolute/path or sftp://[user@]host[:port]/~/path/in/home';

export interface S3Location {
  /** 'https://host[:port]' */
  readonly endpoint: string;
  readonly bucket: string;
  /** '' or the key prefix ending in '/'. */
  readonly prefix: string;
}

export interface SftpTarget {
  readonly user: string;
  readonly host: string;
  readonly port: number;
  /** Absolute, or relative to the login directory (from a '/~/' location). */
  readonly root: string;
}

function invalid(message: string, syntax: string): StoreError {
  return new StoreError('permanent', `${message}; expected ${syntax}`);
}

export function parseS3Location(location: string): S3Location {
  if (!location.startsWith('s3:')) throw invalid('an S3 location starts with s3:', S3_SYNTAX);
  let url: URL;
  try {
    url = new URL(location.slice(3));
  } catch {
    throw invalid('the S3 location is not a valid URL', S3_SYNTAX);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalid(`the S3 location has scheme ${url.protocol}`, S3_SYNTAX);
  // Refused rather than used, so secrets never end up in config files, process lists or messages.
  if (url.username || url.password) throw invalid('the S3 location must not hold credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)', S3_SYNTAX);
  if (url.search || url.hash) throw invalid('the S3 location must not have a query or fragment', S3_SYNTAX);
  const [bucket = '', ...rest] = decodeURIComponent(url.pathname).split('/').filter(Boolean);
  if (!bucket) throw invalid(`the S3 location s3:${url.origin} names no bucket`, S3_SYNTAX);
  return { endpoint: url.origin, bucket, prefix: rest.map((part) => `${part}/`).join('') };
}

/** The normalized form of a parsed S3 location, which names the store in messages. */
export function s3DisplayLocation({ endpoint, bucket, prefix }: S3Location): string {
  return `s3:${endpoint}/${bucket}${prefix ? `/${prefix.slice(0, -1)}` : ''}`;
}

export function parseSftpLocation(location: string): SftpTarget {
  let url: URL;
  try {
    url = new URL(location);
  } catch {
    throw invalid('the SFTP location is not a valid URL', SFTP_SYNTAX);
  }
  if (url.protocol !== 'sftp:') throw invalid('an SFTP location starts with sftp://', SFTP_SYNTAX);
  // Refused rather than used, so a password never ends up in config files, process lists or messages.
  if (url.password) throw invalid('the SFTP location must not hold a password (set COFFER_SFTP_PASSWORD)', SFTP_SYNTAX);
  if (!url.hostname) throw invalid('the SFTP location names no host', SFTP_SYNTAX);
  if (url.search || url.hash) throw invalid('the SFTP location must not have a query or fragment', SFTP_SYNTAX);
  const pathname = decodeURIComponent(url.pathname).replace(/\/+$/, '');
  let root: string;
  if (pathname === '/~') root = '.';
  else if (pathname.startsWith('/~/')) root = pathname.slice(3);
  else root = pathname;
  if (!root) throw invalid(`the SFTP location sftp://${url.host} names no directory`, SFTP_SYNTAX);
  return {
    user: decodeURIComponent(url.username) || os.userInfo().username,
    host: url.hostname,
    port: url.port ? Number(url.port) : 22,
    root,
  };
}

/** The normalized form of a parsed SFTP location (user and home directory spelled out), which names the store in messages. */
export function sftpDisplayLocation({ user, host, port, root }: SftpTarget): string {
  return `sftp://${user}@${host}${port === 22 ? '' : `:${port}`}/${root.startsWith('/') ? root.slice(1) : `~/${root}`}`;
}

/** S3 and SFTP locations cross a network: they are retried, and get more uploads in parallel. */
export function isRemoteLocation(location: string): boolean {
  return /^(s3|sftp):/.test(location);
}

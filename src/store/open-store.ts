// Picks the backend for a location string: a path (or file:// URL), s3:…, sftp:…, rest:… or rclone:….
// The remote backends are imported only when a store of theirs is first used: their SDKs take a few
// hundred milliseconds to load, which every command would pay, even one on a local repository.
import { fileURLToPath } from 'node:url';
import type { ForeignObjectHandler } from './layout.ts';
import { LazyStore } from './lazy.ts';
import { LocalStore } from './local.ts';
import { parseRcloneLocation, parseRestLocation, parseS3Location, rcloneDisplayLocation, restDisplayLocation, s3DisplayLocation } from './locations.ts';
import type { RestHttpOptions } from './rest-http.ts';
import type { RestRcloneOptions } from './rest-rclone.ts';
import type { S3StoreOptions } from './s3.ts';
import type { SftpStoreOptions } from './sftp.ts';
import { sftpTarget } from './ssh-config.ts';
import { StoreError, type Store } from './store.ts';

export interface OpenStoreOptions {
  readonly s3?: S3StoreOptions;
  readonly sftp?: SftpStoreOptions;
  /** Told about each listed entry that is not a repository object (layout.ts); it is skipped either way. */
  readonly onForeign?: ForeignObjectHandler;
  readonly rest?: RestHttpOptions;
  readonly rclone?: RestRcloneOptions;
}

const FORMS = 'a directory path, file:///path, s3:host/bucket[/prefix], sftp:[user@]host:path, rest:http(s)://host[:port]/[path/] or rclone:remote:path';

/** The scheme of a location ('s3', 'sftp', 'file'…), lower case; undefined for a plain path. */
export function locationScheme(location: string): string | undefined {
  // Two letters at least, so a Windows drive ('C:\\backup') reads as a path.
  return /^([a-z][a-z0-9+.-]+):/i.exec(location)?.[1]?.toLowerCase();
}

export function openStore(location: string, options: OpenStoreOptions = {}): Store {
  const { onForeign } = options;
  if (!location.trim()) throw new StoreError('permanent', `no repository location given; use ${FORMS}`);
  const scheme = locationScheme(location);
  switch (scheme) {
    case undefined:
      return new LocalStore(location, { onForeign });
    case 'file':
      try {
        return new LocalStore(fileURLToPath(location), { onForeign });
      } catch {
        throw new StoreError('permanent', `malformed file location ${location}; use file:///absolute/path`);
      }
    // Parsed here so that a malformed location fails at once, not on first use.
    case 's3':
      return new LazyStore(s3DisplayLocation(parseS3Location(location)), async () => {
        const { S3Store } = await import('./s3.ts');
        return S3Store.open(location, { onForeign, ...options.s3 });
      });
    case 'sftp':
      return new LazyStore(sftpTarget(location, options.sftp?.homeDir).display, async () => {
        const { SftpStore } = await import('./sftp.ts');
        return new SftpStore(location, { onForeign, ...options.sftp });
      });
    case 'rest':
      return new LazyStore(restDisplayLocation(parseRestLocation(location)), async () => {
        const { openRestHttpStore } = await import('./rest-http.ts');
        return openRestHttpStore(location, { onForeign, ...options.rest });
      });
    case 'rclone':
      return new LazyStore(rcloneDisplayLocation(parseRcloneLocation(location)), async () => {
        const { openRestRcloneStore } = await import('./rest-rclone.ts');
        return openRestRcloneStore(location, { onForeign, ...options.rclone });
      });
    default:
      // Only the scheme is echoed: the rest of an unknown location might hold a secret.
      throw new StoreError('permanent', `unknown repository location scheme '${scheme}:'; use ${FORMS} (write ./${scheme}:… for a local directory with a colon in its name)`);
  }
}

/**
 * The one spelling of a location: the name its store goes by (an absolute path for a directory, the
 * normalized URL of an S3 bucket or SFTP directory). Creating the store connects to nothing.
 */
export function canonicalLocation(location: string): string {
  return openStore(location).location;
}

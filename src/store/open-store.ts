// Picks the backend for a location string: a path (or file:// URL), s3:http(s)://…, or sftp://….
// The S3 and SFTP backends are imported only when a store of theirs is first used: their SDKs take a
// few hundred milliseconds to load, which every command would pay, even one on a local repository.
import { fileURLToPath } from 'node:url';
import type { ForeignObjectHandler } from './layout.ts';
import { LazyStore } from './lazy.ts';
import { LocalStore } from './local.ts';
import { parseS3Location, parseSftpLocation, s3DisplayLocation, sftpDisplayLocation } from './locations.ts';
import type { S3StoreOptions } from './s3.ts';
import type { SftpStoreOptions } from './sftp.ts';
import { StoreError, type Store } from './store.ts';

export interface OpenStoreOptions {
  readonly s3?: S3StoreOptions;
  readonly sftp?: SftpStoreOptions;
  /** Told about each listed entry that is not a repository object (layout.ts); it is skipped either way. */
  readonly onForeign?: ForeignObjectHandler;
}

const FORMS = 'a directory path, file:///path, s3:http(s)://host[:port]/bucket[/prefix] or sftp://user@host[:port]/path';

export function openStore(location: string, options: OpenStoreOptions = {}): Store {
  const { onForeign } = options;
  if (!location.trim()) throw new StoreError('permanent', `no repository location given; use ${FORMS}`);
  // Two letters at least, so a Windows drive ('C:\\backup') reads as a path.
  const scheme = /^([a-z][a-z0-9+.-]+):/i.exec(location)?.[1]?.toLowerCase();
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
        return new S3Store(location, { onForeign, ...options.s3 });
      });
    case 'sftp':
      return new LazyStore(sftpDisplayLocation(parseSftpLocation(location)), async () => {
        const { SftpStore } = await import('./sftp.ts');
        return new SftpStore(location, { onForeign, ...options.sftp });
      });
    default:
      // Only the scheme is echoed: the rest of an unknown location might hold a secret.
      throw new StoreError('permanent', `unknown repository location scheme '${scheme}:'; use ${FORMS} (write ./${scheme}:… for a local directory with a colon in its name)`);
  }
}

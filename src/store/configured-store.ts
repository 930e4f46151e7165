// A store for one location as every process of a backup opens it: the CLI's commands, the daemon's
// runs and the worker processes of a scaled-out backup (which get these settings over their IPC
// channel). Remote stores retry dropped connections with backoff (a local disk error is not going to
// fix itself) and are read through the local cache; bandwidth limits throttle it; HTTPS trusts the
// given CA certificates; credentials come from `env` when a plan's credentialsCommand provided them.
import path from 'node:path';
import { CacheStore, defaultCacheRoot, type CacheEvents } from './cache.ts';
import { isRemoteLocation } from './locations.ts';
import { canonicalLocation, openStore } from './open-store.ts';
import { RetryStore } from './retry.ts';
import { StoreError, type Store } from './store.ts';
import { parseRate, ThrottleStore } from './throttle.ts';

/** What opening a store takes besides its location: throttles, trust for HTTPS, the local cache and credentials. */
export interface StoreSettings {
  /** RATE for every location, or LOCATION=RATE (--limit-upload, a plan's limitUpload). */
  readonly limitUpload?: readonly string[];
  readonly limitDownload?: readonly string[];
  /**
   * How many processes share the limits above (the workers of a scaled-out backup): each gets this
   * share of every rate, so that together they stay under the limit the user set. Default 1.
   */
  readonly limitShares?: number;
  readonly cacert?: readonly string[];
  readonly insecureTls?: boolean;
  /** False with --no-cache: remote repositories are read without the local cache. */
  readonly cache?: boolean;
  /** --cache-dir; default $COFFER_CACHE_DIR, else $XDG_CACHE_HOME/coffer or ~/.cache/coffer. */
  readonly cacheDir?: string;
  /** Where the stores read their credentials: the process environment with a plan's credentialsCommand output on top. */
  readonly env?: NodeJS.ProcessEnv;
  /** Ends the stores' waits for bandwidth (a command's Ctrl-C, a daemon job's stop): at 64 KiB/s one pack's share is minutes. */
  readonly signal?: AbortSignal;
}

/** Who hears about what a store skips or cannot use (the CLI prints warnings, a worker writes to its stderr). */
export interface StoreEvents extends CacheEvents {
  /** An entry of `location` that is not a repository object; it is skipped either way. */
  onForeign?(location: string, name: string, reason: string): void;
}

/** The limit for `location` from `--limit-*` values: a LOCATION=RATE for it, else a plain RATE. */
function limitFor(location: string, values: readonly string[], flag: string): number | undefined {
  let limit: number | undefined;
  for (const value of values) {
    const eq = value.lastIndexOf('=');
    const [target, rate] = eq < 0 ? [undefined, value] : [value.slice(0, eq), value.slice(eq + 1)];
    if (target !== undefined && target !== location && canonicalOrSelf(target) !== location) continue;
    try {
      const parsed = parseRate(rate);
      if (target !== undefined || limit === undefined) limit = parsed;
    } catch (err) {
      throw new StoreError('permanent', `${flag}: ${(err as Error).message}`);
    }
  }
  return limit;
}

function canonicalOrSelf(location: string): string {
  try {
    return canonicalLocation(location);
  } catch {
    return location;
  }
}

function cacheRoot(settings: StoreSettings): string {
  const dir = settings.cacheDir ?? process.env.COFFER_CACHE_DIR;
  return dir ? path.resolve(dir) : defaultCacheRoot();
}

export function openStoreWith(location: string, settings: StoreSettings, events: StoreEvents = {}): Store {
  const caFiles = settings.cacert?.length ? [...settings.cacert] : process.env.COFFER_CACERT ? [process.env.COFFER_CACERT] : [];
  const tls = { caFiles, insecure: settings.insecureTls ?? false };
  const env = settings.env;
  const onForeign = events.onForeign;
  const opened: Store = openStore(location, {
    ...(onForeign ? { onForeign: (name: string, reason: string) => onForeign(opened.location, name, reason) } : {}),
    s3: { tls, ...(env ? { env } : {}) },
    rest: { tls },
    ...(env ? { sftp: { env } } : {}),
  });
  let store = opened;
  const shares = Math.max(1, settings.limitShares ?? 1);
  const upload = limitFor(location, settings.limitUpload ?? [], '--limit-upload');
  const download = limitFor(location, settings.limitDownload ?? [], '--limit-download');
  if (upload !== undefined || download !== undefined) store = new ThrottleStore(store, { ...(upload ? { upload: upload / shares } : {}), ...(download ? { download: download / shares } : {}), ...(settings.signal ? { signal: settings.signal } : {}) });
  // Above the throttle (a cached read moves no bytes over the network), below the retries.
  if (isRemoteLocation(location) && settings.cache !== false) store = new CacheStore(store, cacheRoot(settings), events);
  // A few quick tries while a location has never answered: a typo fails in seconds, not a minute.
  if (isRemoteLocation(location)) store = new RetryStore(store, { firstContactAttempts: 3 });
  return store;
}

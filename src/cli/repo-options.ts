// Options every repository command takes, and opening the stores and the repository they name.
import { Command, Option } from 'commander';
import { quoteName } from '../format/text.ts';
import { Repository } from '../repo/repository.ts';
import { isRemoteLocation } from '../store/locations.ts';
import { openStore } from '../store/open-store.ts';
import { RetryStore } from '../store/retry.ts';
import type { Store } from '../store/store.ts';
import { parseRate, ThrottleStore } from '../store/throttle.ts';
import { UsageError } from './errors.ts';
import { printWarning } from './output.ts';
import { readPassphrase, type PassphraseOptions } from './passphrase.ts';

export interface RepoOptions extends PassphraseOptions {
  readonly repo: string[];
  readonly json?: boolean;
  readonly limitUpload: string[];
  readonly limitDownload: string[];
  readonly cacert?: string[];
  readonly insecureTls?: boolean;
}

/** What opening a store takes besides its location. */
export type StoreSettings = Pick<RepoOptions, 'limitUpload' | 'limitDownload' | 'cacert' | 'insecureTls'>;

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function addStoreOptions(command: Command): Command {
  return command
    .addOption(new Option('--limit-upload <rate>', 'upload limit: RATE for every destination or LOCATION=RATE (KiB/s, or 5M, 1G; repeatable)').argParser(collect).default([]))
    .addOption(new Option('--limit-download <rate>', 'download limit, same forms as --limit-upload').argParser(collect).default([]))
    .addOption(new Option('--cacert <file>', 'trust the CA certificate(s) in this PEM file for HTTPS (S3, REST) besides the usual ones (repeatable; default $COFFER_CACERT)').argParser(collect))
    .option('--insecure-tls', "accept any HTTPS server certificate (S3, REST): encrypted, but the server's identity is not checked");
}

export function addRepoOptions(command: Command): Command {
  return addStoreOptions(
    command
      .addOption(new Option('-r, --repo <location>', 'repository location (repeat for replicas); default $COFFER_REPO').argParser(collect))
      .option('--password-file <file>', 'read the passphrase from a file')
      .option('--password-command <command>', 'run a command that prints the passphrase (e.g. "pass show coffer")')
      .option('--json', 'machine-readable output (JSON lines)'),
  );
}

export function repoLocations(options: RepoOptions): string[] {
  const locations = options.repo?.length ? options.repo : process.env.COFFER_REPO ? [process.env.COFFER_REPO] : [];
  if (locations.length === 0) throw new UsageError('no repository given: use --repo LOCATION or set COFFER_REPO');
  if (new Set(locations).size !== locations.length) throw new UsageError('the same repository location is given twice');
  return locations;
}

/** The limit for `location` from `--limit-*` values: a LOCATION=RATE for it, else a plain RATE. */
function limitFor(location: string, values: readonly string[], flag: string): number | undefined {
  let limit: number | undefined;
  for (const value of values) {
    const eq = value.lastIndexOf('=');
    const [target, rate] = eq < 0 ? [undefined, value] : [value.slice(0, eq), value.slice(eq + 1)];
    if (target !== undefined && target !== location) continue;
    try {
      const parsed = parseRate(rate);
      if (target !== undefined || limit === undefined) limit = parsed;
    } catch (err) {
      throw new UsageError(`${flag}: ${(err as Error).message}`);
    }
  }
  return limit;
}

/** Entries of a store that are not repository objects, already reported: each is reported once per run. */
const reportedForeign = new Set<string>();

function reportForeign(location: string, name: string, reason: string): void {
  const key = `${location}\0${name}`;
  if (reportedForeign.has(key)) return;
  reportedForeign.add(key);
  printWarning(`ignoring ${quoteName(name)} in ${location}: ${reason}`);
}

/**
 * A store for one location, as every command uses it: remote stores retry dropped connections with
 * backoff (a local disk error is not going to fix itself), and --limit-* throttle it. Entries that are
 * not repository objects (planted files, names a hostile server lists) are skipped with a warning.
 */
export function openConfiguredStore(location: string, options: StoreSettings, env?: NodeJS.ProcessEnv): Store {
  const caFiles = options.cacert?.length ? options.cacert : process.env.COFFER_CACERT ? [process.env.COFFER_CACERT] : [];
  const tls = { caFiles, insecure: options.insecureTls ?? false };
  // `env`: where the stores read their credentials, when a plan's credentialsCommand provided them.
  const opened: Store = openStore(location, { onForeign: (name, reason) => reportForeign(opened.location, name, reason), s3: { tls, ...(env ? { env } : {}) }, rest: { tls }, ...(env ? { sftp: { env } } : {}) });
  let store = opened;
  const upload = limitFor(location, options.limitUpload ?? [], '--limit-upload');
  const download = limitFor(location, options.limitDownload ?? [], '--limit-download');
  if (upload !== undefined || download !== undefined) store = new ThrottleStore(store, { ...(upload ? { upload } : {}), ...(download ? { download } : {}) });
  // A few quick tries while a location has never answered: a typo fails in seconds, not a minute.
  if (isRemoteLocation(location)) store = new RetryStore(store, { firstContactAttempts: 3 });
  return store;
}

export function openStores(options: RepoOptions): Store[] {
  return repoLocations(options).map((location) => openConfiguredStore(location, options));
}

/** Damaged snapshots and index files are skipped, unreachable replicas left out; the user hears about each. */
export function reportDamage(repo: Repository): void {
  repo.onDamaged = (name, reason) => printWarning(`skipping ${name}: ${reason}; run coffer check`);
  repo.onFallback = (e) => printWarning(`${e.name} could not be read from ${e.failed} (${e.reason}); read it from ${e.servedBy}`);
  for (const u of repo.unavailable) printWarning(`replica ${u.store.location} is left out: ${u.error.message}`);
}

/** Opens the repository and loads its index (needed by every command that reads or writes blobs). */
export async function openRepository(options: RepoOptions, { loadIndex = true } = {}): Promise<Repository> {
  const stores = openStores(options);
  try {
    const repo = await Repository.open(stores, await readPassphrase(options));
    reportDamage(repo);
    if (loadIndex) await repo.loadIndex();
    return repo;
  } catch (err) {
    await Promise.all(stores.map((s) => s.close()));
    throw err;
  }
}

/** Opens the repository, runs `work` with it, and closes it whatever happens. */
export async function withRepository<T>(options: RepoOptions, loadIndex: boolean, work: (repo: Repository) => Promise<T>): Promise<T> {
  const repo = await openRepository(options, { loadIndex });
  try {
    return await work(repo);
  } finally {
    await repo.close();
  }
}

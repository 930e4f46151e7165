// Options every repository command takes, and opening the stores and the repository they name. The
// repository comes from --repo, else the plan (--plan), else COFFER_REPO or COFFER_REPOSITORY_FILE;
// locations are put in their canonical spelling (an absolute path, say) before anything uses them.
import fs from 'node:fs';
import { Command, Option } from 'commander';
import type { PlanConfig } from '../config/config-file.ts';
import { quoteName } from '../format/text.ts';
import { Repository } from '../repo/repository.ts';
import { WriterSession } from '../repo/writer-markers.ts';
import { openStoreWith, type StoreEvents, type StoreSettings } from '../store/configured-store.ts';
import { canonicalLocation } from '../store/open-store.ts';
import type { Store } from '../store/store.ts';
import { REPOSITORY_ENVIRONMENT, STORE_ENVIRONMENT, usesEnvironment } from './environment-help.ts';
import { UsageError } from './exit-codes.ts';
import { interruption } from './interrupt.ts';
import { printWarning } from './output.ts';
import { readPassphrase, type PassphraseOptions, type PlanPassphrase } from './passphrase.ts';
import { unlockRepository } from './unlock.ts';

export interface RepoOptions extends PassphraseOptions, StoreSettings {
  readonly repo?: string[];
  readonly plan?: string;
  readonly config?: string;
  readonly json?: boolean;
}

/** What a command works on, once the command line, the plan and the environment are put together. */
export interface RepositorySettings {
  /** Canonical locations, at least one, no two the same. */
  readonly locations: string[];
  readonly limits: StoreSettings;
  /** The plan's passphrase source, if --plan named one. */
  readonly passphrase: PlanPassphrase;
  readonly plan?: PlanConfig;
  /** `limits` with the plan's credentialsCommand run again: short-lived credentials expire while a retry waits. */
  readonly renewCredentials: () => Promise<StoreSettings>;
}

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** --limit-download, --limit-upload for a command that writes (`upload`), --cacert, --insecure-tls, --no-cache and --cache-dir. */
export function addStoreOptions(command: Command, { upload = false } = {}): Command {
  if (upload) command.addOption(new Option('--limit-upload <rate>', 'upload limit: RATE for every destination or LOCATION=RATE (KiB/s, or 5M, 1G; repeatable)').argParser(collect).default([]));
  command
    .addOption(new Option('--limit-download <rate>', `download limit: RATE or LOCATION=RATE${upload ? ', as --limit-upload' : ' (KiB/s, or 5M, 1G; repeatable)'}`).argParser(collect).default([]))
    .addOption(new Option('--cacert <file>', 'trust the CA certificate(s) in this PEM file for HTTPS (S3, REST) besides the usual ones (repeatable; default $COFFER_CACERT)').argParser(collect))
    .option('--insecure-tls', "accept any HTTPS server certificate (S3, REST): encrypted, but the server's identity is not checked")
    .option('--no-cache', 'read remote repositories without the local cache of their index, snapshots and trees')
    .option('--cache-dir <dir>', 'where remote repositories are cached (default $COFFER_CACHE_DIR, $XDG_CACHE_HOME/coffer or ~/.cache/coffer)');
  return usesEnvironment(command, STORE_ENVIRONMENT);
}

/** --repo, --plan, --config, the passphrase options, the store options, -q and (unless `json` is false) --json. */
export function addRepoOptions(command: Command, { upload = false, json = true } = {}): Command {
  command
    .addOption(new Option('-r, --repo <location>', 'repository location (repeat for replicas); default: the plan\'s, or $COFFER_REPO').argParser(collect))
    .option('--plan <name>', "use a plan's repositories and passphrase source from the configuration file")
    .option('--config <file>', 'configuration file (default $COFFER_CONFIG or ~/.config/coffer/config.yaml)')
    .option('--password-file <file>', 'read the passphrase from a file')
    .option('--password-command <command>', 'run a command that prints the passphrase (e.g. "pass show coffer")');
  if (json) command.option('--json', 'machine-readable output (JSON lines, see docs/JSON.md)');
  addQuietOption(command);
  usesEnvironment(command, REPOSITORY_ENVIRONMENT);
  return addStoreOptions(command, { upload });
}

/** -q, read for every command by main.ts (output.ts setQuietOutput). */
export function addQuietOption(command: Command): Command {
  return command.option('-q, --quiet', 'no progress and no summary: only warnings, errors and what was asked for');
}

/** The plan named by --plan, from the configuration file; undefined without --plan. */
export async function selectedPlan(options: Pick<RepoOptions, 'plan' | 'config'>): Promise<PlanConfig | undefined> {
  if (options.plan === undefined) return undefined;
  // Loaded only here: the configuration's parser and schema cost start-up time that most commands skip.
  const { loadPlan } = await import('../config/config-file.ts');
  return loadPlan(options.config, options.plan);
}

/** Locations from COFFER_REPOSITORY_FILE: one per line; blank lines and # comments are skipped. */
function locationsFromFile(file: string): string[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read COFFER_REPOSITORY_FILE ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const locations = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  if (locations.length === 0) throw new UsageError(`COFFER_REPOSITORY_FILE ${file} names no repository`);
  return locations;
}

function givenLocations(options: RepoOptions, plan: PlanConfig | undefined, env: NodeJS.ProcessEnv): string[] {
  if (options.repo?.length) return options.repo;
  if (plan) return plan.repos;
  if (env.COFFER_REPO && env.COFFER_REPOSITORY_FILE) throw new UsageError('COFFER_REPO and COFFER_REPOSITORY_FILE are both set; unset one');
  if (env.COFFER_REPO) return [env.COFFER_REPO];
  if (env.COFFER_REPOSITORY_FILE) return locationsFromFile(env.COFFER_REPOSITORY_FILE);
  throw new UsageError('no repository given: use --repo LOCATION, --plan NAME, COFFER_REPO or COFFER_REPOSITORY_FILE');
}

/**
 * Canonical spellings of `locations` (a relative path becomes absolute, an S3 or SFTP location takes
 * the form its store names itself by), so one repository is one destination in messages and in the job
 * database however it was typed. Two spellings of one location are refused.
 */
export function canonicalLocations(locations: readonly string[]): string[] {
  const canonical = locations.map(canonicalLocation);
  const twice = canonical.find((l, i) => canonical.indexOf(l) !== i);
  if (twice !== undefined) throw new UsageError(`the repository location ${twice} is given twice`);
  return canonical;
}

/** The process environment with the storage credentials a plan's credentialsCommand prints (never stored). */
async function credentialsEnvironment(plan: PlanConfig | undefined, env: NodeJS.ProcessEnv): Promise<NodeJS.ProcessEnv | undefined> {
  if (!plan?.credentialsCommand) return undefined;
  const { credentialsFromCommand } = await import('../daemon/credentials.ts');
  return { ...env, ...(await credentialsFromCommand(plan.credentialsCommand)) };
}

export async function repositorySettings(options: RepoOptions, env: NodeJS.ProcessEnv = process.env): Promise<RepositorySettings> {
  const plan = await selectedPlan(options);
  const locations = canonicalLocations(givenLocations(options, plan, env));
  const limits: StoreSettings = {
    limitUpload: [...(plan?.limitUpload ?? []), ...(options.limitUpload ?? [])],
    limitDownload: [...(plan?.limitDownload ?? []), ...(options.limitDownload ?? [])],
    cacert: [...(plan?.cacert ?? []), ...(options.cacert ?? [])],
    insecureTls: options.insecureTls ?? plan?.insecureTls ?? false,
    ...(options.cache === false ? { cache: false } : {}),
    ...(options.cacheDir !== undefined ? { cacheDir: options.cacheDir } : {}),
  };
  const withCredentials = async (): Promise<StoreSettings> => {
    const storeEnv = await credentialsEnvironment(plan, env);
    return storeEnv ? { ...limits, env: storeEnv } : limits;
  };
  return {
    locations,
    limits: await withCredentials(),
    renewCredentials: withCredentials,
    passphrase: { ...(plan?.passwordFile ? { passwordFile: plan.passwordFile } : {}), ...(plan?.passwordCommand ? { passwordCommand: plan.passwordCommand } : {}) },
    ...(plan ? { plan } : {}),
  };
}

const storeEvents: StoreEvents = {
  onDamaged: (name, reason) => printWarning(`${reason}; read ${name} from the repository again`),
  onUnusable: (reason) => printWarning(reason),
  onForeign: reportForeign,
};

/** Entries of a store that are not repository objects, already reported: each is reported once per run. */
const reportedForeign = new Set<string>();

function reportForeign(location: string, name: string, reason: string): void {
  const key = `${location}\0${name}`;
  if (reportedForeign.has(key)) return;
  reportedForeign.add(key);
  printWarning(`ignoring ${quoteName(name)} in ${location}: ${reason}`);
}

/**
 * A store for one location, as every command uses it (store/configured-store.ts), its warnings printed.
 * Entries that are not repository objects (planted files, names a hostile server lists) are skipped with
 * a warning. Unless `settings.signal` says otherwise, the command's Ctrl-C or SIGTERM ends a throttled
 * transfer's wait at once.
 */
export function openConfiguredStore(location: string, settings: StoreSettings, env = settings.env): Store {
  return openStoreWith(location, { ...settings, env, signal: settings.signal ?? interruption }, storeEvents);
}

export function openStores(settings: RepositorySettings): Store[] {
  return settings.locations.map((location) => openConfiguredStore(location, settings.limits));
}

/** Damaged snapshots and index files are skipped, unreachable replicas left out; the user hears about each. */
export function reportDamage(repo: Repository): void {
  repo.onDamaged = (name, reason) => printWarning(`skipping ${name}: ${reason}; run coffer check`);
  repo.onFallback = (e) => printWarning(`${e.name} could not be read from ${e.failed} (${e.reason}); read it from ${e.servedBy}`);
  for (const u of repo.unavailable) printWarning(`replica ${u.store.location} is left out: ${u.error.message}`);
}

/** Opens the repository and loads its index (needed by every command that reads or writes blobs). */
export async function openRepository(options: RepoOptions, { loadIndex = true } = {}): Promise<Repository> {
  const settings = await repositorySettings(options);
  const stores = openStores(settings);
  try {
    const repo = await unlockRepository(stores, await readPassphrase(options, settings.passphrase), (options as { dataDir?: string }).dataDir);
    reportDamage(repo);
    if (loadIndex) await repo.loadIndex();
    return repo;
  } catch (err) {
    await Promise.all(stores.map((s) => s.close()));
    throw err;
  }
}

/**
 * The marker of a long read (restore, check), written before the index is loaded, so that a prune
 * waits for the read instead of deleting packs it is about to read (FORMAT.md 12.3). Best effort:
 * with read-only credentials the read runs without one. End it when the read is done.
 */
export function startReader(repo: Repository, command: string): Promise<WriterSession> {
  return WriterSession.start(repo, { command, onStoreFailure: 'skip', optional: true });
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

// Options every repository command takes, and opening the repository they name.
import { Command, Option } from 'commander';
import { Repository } from '../repo/repository.ts';
import { openStore } from '../store/open-store.ts';
import type { Store } from '../store/store.ts';
import { UsageError } from './errors.ts';
import { printWarning } from './output.ts';
import { readPassphrase, type PassphraseOptions } from './passphrase.ts';

export interface RepoOptions extends PassphraseOptions {
  readonly repo: string[];
  readonly json?: boolean;
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function addRepoOptions(command: Command): Command {
  return command
    .addOption(new Option('-r, --repo <location>', 'repository location (repeat for replicas); default $COFFER_REPO').argParser(collect))
    .option('--password-file <file>', 'read the passphrase from a file')
    .option('--password-command <command>', 'run a command that prints the passphrase (e.g. "pass show coffer")')
    .option('--json', 'machine-readable output (JSON lines)');
}

export function repoLocations(options: RepoOptions): string[] {
  const locations = options.repo?.length ? options.repo : process.env.COFFER_REPO ? [process.env.COFFER_REPO] : [];
  if (locations.length === 0) throw new UsageError('no repository given: use --repo LOCATION or set COFFER_REPO');
  if (new Set(locations).size !== locations.length) throw new UsageError('the same repository location is given twice');
  return locations;
}

export function openStores(options: RepoOptions): Store[] {
  return repoLocations(options).map((location) => openStore(location));
}

/** Damaged snapshots and index files are skipped; the user hears about each one. */
export function reportDamage(repo: Repository): void {
  repo.onDamaged = (name, reason) => printWarning(`skipping ${name}: ${reason}; run coffer check`);
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

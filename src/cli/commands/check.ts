import { Command, Option } from 'commander';
import { runCheck, type ReadDataMode } from '../../engine/check.ts';
import { EXIT_FATAL, UsageError } from '../exit-codes.ts';
import { count } from '../format.ts';
import { printJson, printLine, printSummary, printWarning, StatusLine } from '../output.ts';
import { addRepoOptions, openRepository, openStores, repositorySettings, startReader, type RepoOptions } from '../repo-options.ts';
import { compareReplicas, takeInventory } from '../../engine/replicas.ts';

interface CheckOptions extends RepoOptions {
  readonly readData?: boolean;
  readonly readDataSubset?: string;
  readonly replicas?: boolean;
}

/** `check --replicas`: every object the same on every --repo location (by listing; no passphrase needed). */
async function checkReplicas(options: CheckOptions): Promise<void> {
  const stores = openStores(await repositorySettings(options));
  try {
    if (stores.length < 2) throw new UsageError('--replicas compares replicas: give two or more --repo locations');
    const replicas = await Promise.all(stores.map(async (store) => ({ store, inventory: await takeInventory(store) })));
    const configs = await Promise.all(stores.map((s) => s.get('config').then((b) => b.toString('hex'), (e: Error) => `unreadable: ${e.message}`)));
    const mismatches = compareReplicas(replicas);
    if (new Set(configs).size > 1) mismatches.unshift({ name: 'config', missingOn: [], differentOn: stores.filter((_, i) => configs[i] !== configs[0]).map((s) => s.location) });
    for (const m of mismatches) {
      if (options.json) printJson({ type: 'mismatch', ...m });
      else {
        if (m.missingOn.length) printLine(`missing: ${m.name} on ${m.missingOn.join(', ')}`);
        if (m.differentOn.length) printLine(`different: ${m.name} on ${m.differentOn.join(', ')}`);
      }
    }
    const objects = new Set(replicas.flatMap((r) => [...r.inventory.keys()])).size;
    if (options.json) printJson({ type: 'summary', replicas: stores.length, objects, mismatches: mismatches.length });
    else printSummary(mismatches.length === 0 ? `all ${stores.length} replicas hold the same ${count(objects, 'object')}` : `${count(mismatches.length, 'object')} ${mismatches.length === 1 ? 'differs' : 'differ'} between replicas; coffer sync --from GOOD --to OTHER copies missing ones`);
    if (mismatches.length > 0) process.exitCode = EXIT_FATAL;
  } finally {
    await Promise.all(stores.map((s) => s.close()));
  }
}

function readDataMode(options: CheckOptions): ReadDataMode {
  if (options.readData && options.readDataSubset) throw new UsageError('use either --read-data or --read-data-subset, not both');
  if (options.readData) return { kind: 'all' };
  if (options.readDataSubset === undefined) return { kind: 'none' };
  const m = /^(\d+(?:\.\d+)?)%$/.exec(options.readDataSubset);
  const percent = m ? Number(m[1]) : NaN;
  if (!(percent > 0 && percent <= 100)) throw new UsageError(`--read-data-subset takes a percentage such as 10%, not "${options.readDataSubset}"`);
  return { kind: 'subset', percent };
}

export function checkCommand(): Command {
  return addRepoOptions(new Command('check').description('check the repository: structure, and with --read-data the data itself'))
    .option('--read-data', 'read, decrypt and verify every pack')
    .addOption(new Option('--read-data-subset <percent>', 'read a random N% of the packs (e.g. 10%)'))
    .option('--replicas', 'compare the --repo replicas object by object instead')
    .action(async (given: CheckOptions) => {
      // What is checked is the repository itself, never the local cache's copies of it.
      const options = { ...given, cache: false };
      if (options.replicas) return checkReplicas(options);
      const mode = readDataMode(options);
      const repo = await openRepository(options, { loadIndex: false });
      const status = new StatusLine();
      try {
        const reader = await startReader(repo, 'check');
        const result = await runCheck(repo, { readData: mode, onProgress: (m) => status.update(m) }).finally(() => reader.end());
        status.clear();
        if (options.json) {
          printJson({ type: 'summary', ...result, ok: result.errors.length === 0 });
        } else {
          for (const note of result.notes) printWarning(note);
          for (const error of result.errors) printLine(`error: ${error}`);
          printSummary(
            `checked ${count(result.snapshots, 'snapshot')}, ${count(result.trees, 'tree')}, ${count(result.packs, 'pack')}` +
              (mode.kind === 'none' ? '' : `; read ${count(result.packsRead, 'pack')} and verified ${count(result.blobsVerified, 'blob')}`),
          );
          printSummary(result.errors.length === 0 ? 'no errors were found' : `${count(result.errors.length, 'error')} found`);
        }
        if (result.errors.length > 0) process.exitCode = EXIT_FATAL;
      } finally {
        status.clear();
        await repo.close();
      }
    });
}

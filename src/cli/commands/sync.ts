import { Command, Option } from 'commander';
import { SyncRun } from '../../engine/sync.ts';
import { testWrite } from '../../engine/test-write.ts';
import { destinationLines } from '../destination-lines.ts';
import { usesEnvironment } from '../environment-help.ts';
import { EXIT_FATAL, UsageError } from '../exit-codes.ts';
import { count, formatBytes } from '../format.ts';
import { every, printJson, printLine, printSummary, StatusLine } from '../output.ts';
import { addQuietOption, addStoreOptions, canonicalLocations, collect, openConfiguredStore, repositorySettings, type RepoOptions } from '../repo-options.ts';
import type { StoreSettings } from '../../store/configured-store.ts';
import type { Store } from '../../store/store.ts';

interface SyncOptions extends RepoOptions {
  readonly from?: string;
  readonly to: string[];
}

/** Copies from `source` to `targets` with live progress; returns false if any target failed. */
async function runSync(source: Store, targets: Store[], json: boolean): Promise<boolean> {
  const run = new SyncRun(source, targets);
  const status = new StatusLine();
  const stop = json ? every(1000, () => printJson({ type: 'status', destinations: run.progress() })) : every(250, () => status.update(destinationLines(run.progress())));
  let results;
  try {
    results = await run.run();
  } finally {
    stop();
    status.clear();
  }
  for (const r of results) {
    if (json) printJson({ type: 'synced', ...r });
    else if (r.error) printLine(`${r.location}: failed: ${r.error}`);
    else printSummary(`${r.location}: copied ${count(r.copied, 'object')}, ${formatBytes(r.bytes)}${r.copied === 0 ? ' (already up to date)' : ''}`);
  }
  return results.every((r) => !r.error);
}

async function closeAll(stores: Store[]): Promise<void> {
  await Promise.all(stores.map((s) => s.close()));
}

/**
 * The replica to copy from and those to bring up to date: --from and --to, or a plan's repositories (the
 * first, or --from, to all the others, or to --to).
 */
async function syncLocations(options: SyncOptions): Promise<{ from: string; to: string[]; limits: StoreSettings }> {
  if (options.plan === undefined) {
    if (options.from === undefined || options.to.length === 0) throw new UsageError('give --from LOCATION and at least one --to LOCATION, or --plan NAME for the replicas of a plan');
    const [from, ...to] = canonicalLocations([options.from, ...options.to]);
    return { from: from!, to, limits: options };
  }
  const settings = await repositorySettings({ ...options, repo: undefined });
  const [from] = options.from === undefined ? settings.locations : canonicalLocations([options.from]);
  const to = options.to.length > 0 ? canonicalLocations(options.to) : settings.locations.filter((l) => l !== from);
  if (to.length === 0) throw new UsageError(`plan "${options.plan}" has one repository: nothing to bring up to date (add one with coffer replica add --plan ${options.plan} LOCATION)`);
  return { from: from!, to, limits: settings.limits };
}

export function syncCommand(): Command {
  const command = addStoreOptions(new Command('sync').description('copy to replicas whatever they lack (no passphrase needed: objects stay encrypted)'), { upload: true })
    .option('--from <location>', "replica to copy from (with --plan: default the plan's first repository)")
    .addOption(new Option('--to <location>', "replica to bring up to date (repeatable; with --plan: default the plan's other repositories)").argParser(collect).default([]))
    .option('--plan <name>', "the replicas are the plan's repositories")
    .option('--config <file>', 'configuration file (default $COFFER_CONFIG or ~/.config/coffer/config.yaml)')
    .option('--json', 'machine-readable output (JSON lines, see docs/JSON.md)');
  addQuietOption(command);
  return usesEnvironment(command, ['COFFER_CONFIG']).action(async (options: SyncOptions) => {
    const { from, to, limits } = await syncLocations(options);
    const source = openConfiguredStore(from, limits);
    const targets = to.map((t) => openConfiguredStore(t, limits));
    try {
      if (!(await runSync(source, targets, options.json ?? false))) process.exitCode = EXIT_FATAL;
    } finally {
      await closeAll([source, ...targets]);
    }
  });
}

export function replicaCommand(): Command {
  const replica = new Command('replica').description('manage the replicas (destinations) of a repository');
  replica.addCommand(
    addQuietOption(addStoreOptions(new Command('add').description('test-write a new location, then copy the repository there'), { upload: true })
      .addOption(new Option('-r, --repo <location>', 'an existing replica (repeatable; the first that answers is copied)').argParser(collect))
      .option('--plan <name>', "the existing replicas are the plan's repositories")
      .option('--config <file>', 'configuration file (default $COFFER_CONFIG or ~/.config/coffer/config.yaml)')
      .option('--json', 'machine-readable output (JSON lines, see docs/JSON.md)'))
      .argument('<location>', 'the new replica')
      .action(async (location: string, options: RepoOptions) => {
        const settings = await repositorySettings(options);
        const [newLocation] = canonicalLocations([location]);
        if (settings.locations.includes(newLocation!)) throw new UsageError(`${newLocation} is already a replica`);
        const sources = settings.locations.map((l) => openConfiguredStore(l, settings.limits));
        const target = openConfiguredStore(newLocation!, settings.limits);
        try {
          const probe = await testWrite(target);
          if (!probe.ok) throw new UsageError(`refusing ${newLocation}: the test-write failed (${probe.error})`);
          if (!options.json) printSummary(`test-write to ${newLocation} passed (${probe.ms.toFixed(0)} ms)`);
          let failed: unknown;
          for (const source of sources) {
            try {
              if (!(await runSync(source, [target], options.json ?? false))) process.exitCode = EXIT_FATAL;
              return;
            } catch (err) {
              failed ??= err;
            }
          }
          throw failed;
        } finally {
          await closeAll([...sources, target]);
        }
      }),
  );
  return replica;
}

import { Command, Option } from 'commander';
import { SyncRun } from '../../engine/sync.ts';
import { testWrite } from '../../engine/test-write.ts';
import { destinationLines } from '../destination-lines.ts';
import { EXIT_FATAL, UsageError } from '../errors.ts';
import { formatBytes } from '../format.ts';
import { every, printJson, printLine, StatusLine } from '../output.ts';
import { addStoreOptions, collect, openConfiguredStore, repoLocations, type RepoOptions } from '../repo-options.ts';
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
    else printLine(r.error ? `${r.location}: failed: ${r.error}` : `${r.location}: copied ${r.copied} objects, ${formatBytes(r.bytes)}${r.copied === 0 ? ' (already up to date)' : ''}`);
  }
  return results.every((r) => !r.error);
}

async function closeAll(stores: Store[]): Promise<void> {
  await Promise.all(stores.map((s) => s.close()));
}

export function syncCommand(): Command {
  return addStoreOptions(new Command('sync').description('copy to replicas whatever they lack (no passphrase needed: objects stay encrypted)'))
    .requiredOption('--from <location>', 'replica to copy from')
    .addOption(new Option('--to <location>', 'replica to bring up to date (repeatable)').argParser(collect).default([]))
    .option('--json', 'machine-readable output (JSON lines)')
    .action(async (options: SyncOptions) => {
      if (options.to.length === 0) throw new UsageError('give at least one --to LOCATION');
      const source = openConfiguredStore(options.from!, options);
      const targets = options.to.map((t) => openConfiguredStore(t, options));
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
    addStoreOptions(new Command('add').description('test-write a new location, then copy the repository there'))
      .addOption(new Option('-r, --repo <location>', 'an existing replica (repeatable; the first that answers is copied)').argParser(collect))
      .option('--json', 'machine-readable output (JSON lines)')
      .argument('<location>', 'the new replica')
      .action(async (location: string, options: RepoOptions) => {
        const sources = repoLocations(options).map((l) => openConfiguredStore(l, options));
        const target = openConfiguredStore(location, options);
        try {
          const probe = await testWrite(target);
          if (!probe.ok) throw new UsageError(`refusing ${location}: the test-write failed (${probe.error})`);
          if (!options.json) printLine(`test-write to ${location} passed (${probe.ms.toFixed(0)} ms)`);
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

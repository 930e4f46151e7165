import { Command } from 'commander';
import { repairIndex } from '../../engine/repair-index.ts';
import { repairSnapshots } from '../../engine/repair-snapshots.ts';
import { matchesFilter, resolveSnapshot } from '../../repo/snapshot-ref.ts';
import { EXIT_FATAL } from '../exit-codes.ts';
import { interruptSignal } from '../interrupt.ts';
import { printJson, printSummary, printWarning, StatusLine } from '../output.ts';
import { addRepoOptions, withRepository, type RepoOptions } from '../repo-options.ts';
import { addFilterOptions, filterOf, type FilterOptions } from './snapshots.ts';

interface RepairSnapshotsCliOptions extends RepoOptions, FilterOptions {
  readonly forget?: boolean;
  readonly dryRun?: boolean;
  readonly readData?: boolean;
}

/** Repair judges what the repository itself holds: never through the local cache's copies of it. */
function directly<T extends RepoOptions>(options: T): T {
  return { ...options, cache: false };
}

function repairIndexCommand(): Command {
  return addRepoOptions(new Command('index').description('rebuild the index from the headers of the packs themselves')).action(async (options: RepoOptions) => {
    await withRepository(directly(options), false, async (repo) => {
      const status = new StatusLine();
      const interrupt = interruptSignal();
      try {
        const r = await repairIndex(repo, { signal: interrupt.signal, onProgress: (done, total) => status.update(`reading pack headers ${done}/${total}`) });
        status.clear();
        if (options.json) printJson({ type: 'summary', ...r });
        else {
          for (const d of r.damaged) printWarning(`${d.name}: header unreadable on every replica, not indexed (${d.reason})`);
          for (const p of r.partial) printWarning(`${p} is missing on some replicas; coffer sync or the next prune copies it`);
          printSummary(`indexed ${r.packs} packs (${r.blobs} blobs) in ${r.written} index files; removed ${r.removed} old index files`);
          if (r.damaged.length > 0) printSummary('snapshots that need the unreadable packs can be repaired with coffer repair snapshots');
        }
        if (r.damaged.length > 0) process.exitCode = EXIT_FATAL;
      } finally {
        status.clear();
        interrupt.dispose();
      }
    });
  });
}

function repairSnapshotsCommand(): Command {
  return addFilterOptions(addRepoOptions(new Command('snapshots').description('write new snapshots without the data the repository lost (files truncated, unreadable directories dropped)')))
    .argument('[snapshots...]', 'snapshots to repair (default: all, or those matching --host/--path/--tag)')
    .option('--forget', 'forget the original snapshots once the repaired ones are written')
    .option('-n, --dry-run', 'list what would be truncated and dropped, change nothing')
    .option('--read-data', 'read every chunk to find damaged ones (otherwise: chunks missing from the index or whose pack is gone)')
    .action(async (ids: string[], options: RepairSnapshotsCliOptions) => {
      await withRepository(directly(options), false, async (repo) => {
        const all = await repo.listSnapshots();
        const chosen = ids.length > 0 ? [...new Map(ids.map((ref) => resolveSnapshot(all, ref)).map((s) => [s.id, s])).values()] : all.filter((s) => matchesFilter(s, filterOf(options)));
        const status = new StatusLine();
        const interrupt = interruptSignal();
        try {
          const result = await repairSnapshots(repo, {
            snapshots: chosen,
            forget: options.forget ?? false,
            dryRun: options.dryRun ?? false,
            readData: options.readData ?? false,
            signal: interrupt.signal,
            onSnapshot: (done, total) => status.update(`checking snapshot ${done}/${total}`),
          });
          status.clear();
          let damaged = 0;
          for (const r of result.repairs) {
            if (r.paths.length === 0 && !r.lost) continue;
            damaged++;
            if (options.json) {
              printJson({ type: 'snapshot', id: r.original.id, ...(r.repaired ? { repaired: r.repaired } : {}), lost: r.lost, paths: r.paths });
              continue;
            }
            if (r.lost) printSummary(`snapshot ${r.original.id.slice(0, 8)}: nothing can be read (its root directory is lost)`);
            else printSummary(`snapshot ${r.original.id.slice(0, 8)}${r.repaired ? ` → ${r.repaired.slice(0, 8)} (tagged repaired)` : options.dryRun ? ' (would be repaired)' : ''}:`);
            for (const p of r.paths) printSummary(`  ${p.action} ${p.path}: ${p.detail}`);
          }
          if (options.json) printJson({ type: 'summary', checked: result.repairs.length, damaged, dryRun: options.dryRun ?? false, forgotten: result.forgotten });
          else {
            printSummary(damaged === 0 ? `checked ${result.repairs.length} snapshots: none needs repair` : `${damaged} of ${result.repairs.length} snapshots ${options.dryRun ? 'would be repaired (dry run: nothing was changed)' : 'repaired'}`);
            if (result.forgotten.length > 0) printSummary(`forgot ${result.forgotten.length} original snapshots; coffer prune frees their data`);
            else if (damaged > 0 && !options.dryRun) printSummary('the originals are kept; coffer repair snapshots --forget (or coffer forget ID) removes them');
          }
        } finally {
          status.clear();
          interrupt.dispose();
        }
      });
    });
}

export function repairCommand(): Command {
  return new Command('repair').description('repair the index or snapshots after data was lost').addCommand(repairIndexCommand()).addCommand(repairSnapshotsCommand());
}

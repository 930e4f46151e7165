import { Command, Option } from 'commander';
import { SnapshotView } from '../../engine/snapshot-view.ts';
import { STATS_MODES, StatsCollector, type StatsMode } from '../../engine/stats.ts';
import { matchesFilter } from '../../repo/snapshot-ref.ts';
import { count, formatBytes } from '../format.ts';
import { printJson, printLine } from '../output.ts';
import { addRepoOptions, withRepository, type RepoOptions } from '../repo-options.ts';
import { pickSnapshot } from '../snapshot-arg.ts';
import { addFilterOptions, filterOf, type FilterOptions } from './snapshots.ts';

interface StatsOptions extends RepoOptions, FilterOptions {
  readonly mode: StatsMode;
}

export function statsCommand(): Command {
  return addFilterOptions(addRepoOptions(new Command('stats').description('how big snapshots are: what a restore writes, or the data they hold in the repository')))
    .argument('[snapshots...]', 'snapshot ids, unique prefixes, or latest (default: every snapshot that matches the filters)')
    .addOption(
      new Option('--mode <mode>', 'restore-size (files and bytes a restore writes), files-by-contents (distinct files), raw-data (blobs as stored), blobs-per-file (distinct data blobs)')
        .choices(STATS_MODES)
        .default('restore-size'),
    )
    .action(async (refs: string[], options: StatsOptions) => {
      await withRepository(options, true, async (repo) => {
        const filter = filterOf(options);
        const chosen = refs.length > 0 ? await Promise.all(refs.map((ref) => pickSnapshot(repo, ref, filter))) : (await repo.listSnapshots()).filter((s) => matchesFilter(s, filter));
        const stats = new StatsCollector(repo, options.mode);
        for (const stored of new Map(chosen.map((s) => [s.id, s])).values()) await stats.add(await SnapshotView.open(repo, stored.snapshot));
        const r = stats.result();
        if (options.json) {
          printJson({ type: 'stats', ...r });
          return;
        }
        printLine(`stats in ${r.mode} mode of ${count(r.snapshots, 'snapshot')}:`);
        if (r.mode === 'restore-size') printLine(`  files: ${r.files}, directories: ${r.dirs}, size: ${formatBytes(r.bytes)}`);
        if (r.mode === 'files-by-contents') printLine(`  files with distinct contents: ${r.files}, size: ${formatBytes(r.bytes)}`);
        if (r.mode === 'blobs-per-file') printLine(`  files: ${r.files}, distinct data blobs: ${r.blobs}, size: ${formatBytes(r.bytes)}`);
        if (r.mode === 'raw-data') {
          const ratio = r.storedBytes > 0 ? ` (compression ${(r.bytes / r.storedBytes).toFixed(2)}x)` : '';
          printLine(`  blobs: ${r.blobs}, raw size: ${formatBytes(r.bytes)}, stored: ${formatBytes(r.storedBytes)}${ratio}`);
        }
      });
    });
}

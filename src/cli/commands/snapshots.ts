import { Command, Option } from 'commander';
import { matchesFilter, type SnapshotFilter } from '../../repo/snapshot-ref.ts';
import { formatBytes, formatTable } from '../format.ts';
import { printJson, printLine } from '../output.ts';
import { addRepoOptions, collect, withRepository, type RepoOptions } from '../repo-options.ts';

export interface FilterOptions {
  readonly host?: string;
  readonly path: string[];
  readonly tag: string[];
}


/** --host/--path/--tag, used by snapshots and to pick `latest`. */
export function addFilterOptions(command: Command): Command {
  return command
    .option('--host <name>', 'only snapshots of this host')
    .addOption(new Option('--path <path>', 'only snapshots that include this path (repeatable)').argParser(collect).default([]))
    .addOption(new Option('--tag <tag>', 'only snapshots with this tag (repeatable)').argParser(collect).default([]));
}

export function filterOf(options: FilterOptions): SnapshotFilter {
  return { ...(options.host ? { host: options.host } : {}), paths: options.path, tags: options.tag };
}

export function snapshotsCommand(): Command {
  return addFilterOptions(addRepoOptions(new Command('snapshots').description('list snapshots'))).action(async (options: RepoOptions & FilterOptions) => {
    await withRepository(options, false, async (repo) => {
    const list = (await repo.listSnapshots()).filter((s) => matchesFilter(s, filterOf(options)));
    if (options.json) {
      printJson(list.map((s) => ({ id: s.id, ...s.snapshot })));
      return;
    }
    const rows = list.map((s) => [
      s.id.slice(0, 8),
      s.snapshot.time.replace('T', ' ').replace(/\.\d+Z$/, 'Z'),
      s.snapshot.host,
      s.snapshot.tags.join(','),
      s.snapshot.paths.join(' '),
      String(s.snapshot.summary.totalFiles),
      formatBytes(s.snapshot.summary.totalBytes),
    ]);
    printLine(formatTable(['ID', 'Time', 'Host', 'Tags', 'Paths', 'Files', 'Size'], rows));
    printLine(`${list.length} snapshots`);
    });
  });
}

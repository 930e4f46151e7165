import { Command, Option } from 'commander';
import { describeMissing } from '../../engine/scale-out/shard-plan.ts';
import { describeGroup, DEFAULT_GROUP_BY, groupSnapshots, parseGroupBy, type GroupField } from '../../engine/snapshot-filter.ts';
import type { StoredSnapshot } from '../../repo/repository.ts';
import { type SnapshotFilter } from '../../repo/snapshot-ref.ts';
import { UsageError } from '../exit-codes.ts';
import { count, formatBytes, formatTable, formatTime } from '../format.ts';
import { printJson, printLine } from '../output.ts';
import { addRepoOptions, collect, withRepository, type RepoOptions } from '../repo-options.ts';
import { collectTagGroups } from '../tags.ts';

export interface FilterOptions {
  readonly host?: string;
  readonly path: string[];
  readonly tag: string[][];
}

interface SnapshotsOptions extends RepoOptions, FilterOptions {
  readonly latest?: string;
  readonly groupBy?: string;
}

/** --host/--path/--tag, used by snapshots and to pick `latest`. */
export function addFilterOptions(command: Command): Command {
  return command
    .option('--host <name>', 'only snapshots of this host')
    .addOption(new Option('--path <path>', 'only snapshots that include this path (repeatable: all of them)').argParser(collect).default([]))
    .addOption(new Option('--tag <tag[,tag…]>', 'only snapshots with all these tags (repeatable: any of the groups)').argParser(collectTagGroups).default([]));
}

export function filterOf(options: FilterOptions): SnapshotFilter {
  return { ...(options.host ? { host: options.host } : {}), paths: options.path, tags: options.tag };
}

/** A snapshot that lacks parts of its sources (a scaled-out backup whose plan allows partial snapshots) says so. */
export function partialNote(stored: StoredSnapshot): string | undefined {
  const missing = stored.snapshot.partial?.missing;
  if (!missing) return undefined;
  return `snapshot ${stored.id.slice(0, 8)} is partial: it lacks ${missing.map(describeMissing).join('; ')}`;
}

/** The table, then a line for each partial snapshot in it. */
function table(list: readonly StoredSnapshot[]): string[] {
  return [...rowsOf(list), ...list.flatMap((s) => partialNote(s) ?? [])];
}

function rowsOf(list: readonly StoredSnapshot[]): string[] {
  const rows = list.map((s) => [
    s.id.slice(0, 8),
    formatTime(s.snapshot.time),
    s.snapshot.host,
    s.snapshot.tags.join(','),
    s.snapshot.paths.join(' '),
    String(s.snapshot.summary.totalFiles),
    formatBytes(s.snapshot.summary.totalBytes),
  ]);
  return formatTable(['ID', 'Time', 'Host', 'Tags', 'Paths', 'Files', 'Size'], rows);
}

function latestCount(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--latest takes a number of snapshots (1 or more), not "${text}"`);
  return n;
}

export function snapshotsCommand(): Command {
  return addFilterOptions(addRepoOptions(new Command('snapshots').description('list snapshots')))
    .option('--latest <n>', 'only the newest N snapshots of each host and set of paths (or of each --group-by group)')
    .option('--group-by <fields>', 'list in groups: host, paths, tags, comma-separated (e.g. host,paths)')
    .action(async (options: SnapshotsOptions) => {
      const latest = latestCount(options.latest);
      const by: GroupField[] | undefined = options.groupBy === undefined ? undefined : parseGroupBy(options.groupBy);
      await withRepository(options, false, async (repo) => {
        const groups = groupSnapshots(await repo.listSnapshots(), by ?? (latest ? DEFAULT_GROUP_BY : []), filterOf(options)).map((g) => ({
          key: g.key,
          snapshots: latest ? g.snapshots.slice(-latest) : g.snapshots,
        }));
        if (by === undefined) {
          // One list, oldest first, as without --latest.
          const list = groups.flatMap((g) => g.snapshots).sort((a, b) => a.snapshot.time.localeCompare(b.snapshot.time) || a.id.localeCompare(b.id));
          if (options.json) for (const s of list) printJson({ type: 'snapshot', id: s.id, ...s.snapshot });
          else {
            printLine(table(list));
            printLine(count(list.length, 'snapshot'));
          }
          return;
        }
        for (const g of groups) {
          if (options.json) printJson({ type: 'group', key: g.key, snapshots: g.snapshots.map((s) => ({ id: s.id, ...s.snapshot })) });
          else {
            printLine(`${describeGroup(g.key)}:`);
            printLine(table(g.snapshots));
            printLine(count(g.snapshots.length, 'snapshot'));
            printLine();
          }
        }
      });
    });
}

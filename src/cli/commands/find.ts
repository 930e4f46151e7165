import { Command, Option } from 'commander';
import { Finder } from '../../engine/find.ts';
import { SnapshotView } from '../../engine/snapshot-view.ts';
import { matchesFilter } from '../../repo/snapshot-ref.ts';
import { UsageError } from '../exit-codes.ts';
import { count, formatTime } from '../format.ts';
import { printJson, printLine } from '../output.ts';
import { addRepoOptions, collect, withRepository, type RepoOptions } from '../repo-options.ts';
import { pickSnapshot } from '../snapshot-arg.ts';
import { describeNode, nodeJson } from './ls.ts';
import { addFilterOptions, filterOf, type FilterOptions } from './snapshots.ts';

interface FindOptions extends RepoOptions, FilterOptions {
  readonly snapshot: string[];
  readonly ignoreCase?: boolean;
  readonly oldest?: string;
  readonly newest?: string;
  readonly long?: boolean;
}

/** A date or date-time ('2024-05-01', '2024-05-01 13:00'), local time unless a zone is given. */
function parseTime(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const ms = Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(text) ? `${text}T00:00:00` : text.replace(' ', 'T'));
  if (Number.isNaN(ms)) throw new UsageError(`${flag} takes a date such as 2024-05-01 or "2024-05-01 13:00", not "${text}"`);
  return ms;
}

export function findCommand(): Command {
  return addFilterOptions(addRepoOptions(new Command('find').description('find files and directories by name or path in snapshots (newest snapshot first)')))
    .argument('<pattern...>', "name patterns ('*.jpg', 'cv.*') or path patterns ('/home/*/docs')")
    .addOption(new Option('-s, --snapshot <id>', 'search only this snapshot (repeatable; default: all that match the filters)').argParser(collect).default([]))
    .option('-i, --ignore-case', 'match patterns without regard to case')
    .option('--oldest <time>', 'only entries modified at or after this time (e.g. 2024-05-01)')
    .option('--newest <time>', 'only entries modified at or before this time')
    .option('-l, --long', 'show mode, owner, size and time')
    .action(async (patterns: string[], options: FindOptions) => {
      const oldest = parseTime(options.oldest, '--oldest');
      const newest = parseTime(options.newest, '--newest');
      await withRepository(options, true, async (repo) => {
        const filter = filterOf(options);
        const chosen = options.snapshot.length > 0 ? await Promise.all(options.snapshot.map((ref) => pickSnapshot(repo, ref, filter))) : (await repo.listSnapshots()).filter((s) => matchesFilter(s, filter));
        const finder = new Finder({ patterns, ignoreCase: options.ignoreCase ?? false, ...(oldest !== undefined ? { oldest } : {}), ...(newest !== undefined ? { newest } : {}) });
        let total = 0;
        for (const stored of [...chosen].reverse()) {
          let inSnapshot = 0;
          for await (const found of finder.find(await SnapshotView.open(repo, stored.snapshot))) {
            if (options.json) printJson({ ...nodeJson(found.path, found.node), type: 'match', snapshot: stored.id });
            else {
              if (inSnapshot === 0) printLine(`found in snapshot ${stored.id.slice(0, 8)} of ${formatTime(stored.snapshot.time)} (${stored.snapshot.host}):`);
              printLine(`  ${describeNode(found.path, found.node, options.long ?? false)}`);
            }
            inSnapshot++;
          }
          total += inSnapshot;
        }
        if (options.json) printJson({ type: 'summary', snapshots: chosen.length, matches: total });
        else printLine(`${count(total, 'match', 'matches')} in ${count(chosen.length, 'snapshot')}`);
      });
    });
}

import { Command, Option } from 'commander';
import { removeReplaced, retag, type TagChange } from '../../engine/retag.ts';
import { matchesFilter } from '../../repo/snapshot-ref.ts';
import { UsageError } from '../exit-codes.ts';
import { count } from '../format.ts';
import { printJson, printSummary } from '../output.ts';
import { addRepoOptions, collect, withRepository, type RepoOptions } from '../repo-options.ts';
import { pickSnapshot } from '../snapshot-arg.ts';
import { addFilterOptions, filterOf, type FilterOptions } from './snapshots.ts';

interface TagOptions extends RepoOptions, FilterOptions {
  readonly add: string[];
  readonly remove: string[];
  readonly set?: string[];
}

/** `--add a,b --add c` → a, b, c (commas separate tags, as in restic). */
function tagList(values: readonly string[]): string[] {
  return values.flatMap((v) => v.split(',')).map((t) => t.trim()).filter((t) => t !== '');
}

export function tagCommand(): Command {
  return addFilterOptions(addRepoOptions(new Command('tag').description('add, remove or set the tags of snapshots (all that match the filters when none is named)'), { upload: true }))
    .argument('[snapshots...]', 'snapshot ids, unique prefixes, or latest')
    .addOption(new Option('--add <tags>', 'add tags (comma-separated, repeatable)').argParser(collect).default([]))
    .addOption(new Option('--remove <tags>', 'remove tags (comma-separated, repeatable)').argParser(collect).default([]))
    .addOption(new Option('--set <tags>', 'replace all tags (comma-separated, repeatable; --set "" removes every tag)').argParser(collect))
    .action(async (refs: string[], options: TagOptions) => {
      if (options.add.length === 0 && options.remove.length === 0 && options.set === undefined) throw new UsageError('say what to change: --add, --remove or --set');
      if (options.set !== undefined && (options.add.length > 0 || options.remove.length > 0)) throw new UsageError('--set replaces every tag: use it alone, or --add/--remove');
      const change: TagChange = { add: tagList(options.add), remove: tagList(options.remove), ...(options.set !== undefined ? { set: tagList(options.set) } : {}) };
      await withRepository(options, false, async (repo) => {
        // Finish what an interrupted run left (both the old and the new snapshot) before rewriting again.
        await removeReplaced(repo);
        const filter = filterOf(options);
        const chosen = refs.length > 0 ? await Promise.all(refs.map((ref) => pickSnapshot(repo, ref, filter))) : (await repo.listSnapshots()).filter((s) => matchesFilter(s, filter));
        let changed = 0;
        for (const stored of new Map(chosen.map((s) => [s.id, s])).values()) {
          const id = await retag(repo, stored, change);
          if (id) changed++;
          if (options.json) printJson({ type: 'retagged', from: stored.id, to: id ?? stored.id, changed: id !== undefined });
          else if (id) printSummary(`${stored.id.slice(0, 8)} → ${id.slice(0, 8)}`);
        }
        if (options.json) printJson({ type: 'summary', snapshots: chosen.length, changed });
        else printSummary(`changed the tags of ${changed} of ${count(chosen.length, 'snapshot')}`);
      });
    });
}

import { Command } from 'commander';
import { dumpFile, dumpTar } from '../../engine/dump.ts';
import { addRepoOptions, withRepository, type RepoOptions } from '../repo-options.ts';
import { openSnapshot, snapshotAndPath } from '../snapshot-arg.ts';
import { UsageError } from '../exit-codes.ts';
import { addFilterOptions, filterOf, type FilterOptions } from './snapshots.ts';

export function dumpCommand(): Command {
  return addFilterOptions(addRepoOptions(new Command('dump').description('write a file of a snapshot to stdout, or a directory as a tar archive'), { json: false }))
    .argument('<snapshot>', 'snapshot id, unique prefix, or latest; or SNAP:/path')
    .argument('[path]', 'file or directory inside the snapshot, as backed up (/ for everything)')
    .action(async (arg: string, separate: string | undefined, options: RepoOptions & FilterOptions) => {
      const { ref, subpath } = snapshotAndPath(arg, separate);
      if (subpath === '') throw new UsageError('dump needs a path: coffer dump SNAP /path or SNAP:/path (/ for everything)');
      await withRepository(options, true, async (repo) => {
        const { view } = await openSnapshot(repo, ref, filterOf(options));
        const found = await view.find(subpath);
        if (found.tree) {
          // As restic: a tar archive would only garble the terminal.
          if (process.stdout.isTTY) throw new UsageError(`${subpath} is a directory and would be written as a tar archive to the terminal; redirect it (coffer dump … > archive.tar) or pipe it (| tar -t)`);
          await dumpTar(repo, view, found.tree, found.node ? found.node.name : Buffer.alloc(0), process.stdout);
        } else await dumpFile(repo, found.node!, process.stdout);
      });
    });
}

import { Command } from 'commander';
import { dumpFile, dumpTar } from '../../engine/dump.ts';
import { findPath } from '../../engine/tree-walk.ts';
import { addRepoOptions, withRepository, type RepoOptions } from '../repo-options.ts';
import { pickSnapshot } from '../snapshot-arg.ts';
import { addFilterOptions, filterOf, type FilterOptions } from './snapshots.ts';

export function dumpCommand(): Command {
  return addFilterOptions(addRepoOptions(new Command('dump').description('write a file of a snapshot to stdout, or a directory as a tar archive')))
    .argument('<snapshot>', 'snapshot id, unique prefix, or latest')
    .argument('<path>', 'file or directory inside the snapshot (/ for everything)')
    .action(async (ref: string, subpath: string, options: RepoOptions & FilterOptions) => {
      await withRepository(options, true, async (repo) => {
      const snap = await pickSnapshot(repo, ref, filterOf(options));
      const found = await findPath(repo, Buffer.from(snap.snapshot.tree, 'hex'), subpath);
      if (found.tree) await dumpTar(repo, found.tree, found.node ? found.node.name.toString() : '', process.stdout);
      else await dumpFile(repo, found.node!, process.stdout);
      });
    });
}

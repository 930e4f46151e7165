import { Command } from 'commander';
import { nodeTypeName, NodeType } from '../../format/tree.ts';
import { nsToDate } from '../../engine/fs-meta.ts';
import { displayPath, findPath, walkTree } from '../../engine/tree-walk.ts';
import { printJson, printLine } from '../output.ts';
import { addRepoOptions, withRepository, type RepoOptions } from '../repo-options.ts';
import { addFilterOptions, filterOf, type FilterOptions } from './snapshots.ts';
import { pickSnapshot } from '../snapshot-arg.ts';
import type { TreeNode } from '../../format/tree.ts';

interface LsOptions extends RepoOptions, FilterOptions {
  readonly long?: boolean;
}

function modeString(node: TreeNode): string {
  const kind = { [NodeType.Dir]: 'd', [NodeType.Symlink]: 'l', [NodeType.Fifo]: 'p', [NodeType.CharDevice]: 'c', [NodeType.BlockDevice]: 'b', [NodeType.Socket]: 's' }[
    node.type as number
  ];
  let bits = '';
  for (let i = 8; i >= 0; i--) bits += node.mode & (1 << i) ? 'rwx'[(8 - i) % 3] : '-';
  return (kind ?? '-') + bits;
}

function describe(path: string, node: TreeNode, long: boolean): string {
  const suffix = node.type === NodeType.Symlink ? ` -> ${node.linkTarget?.toString()}` : '';
  if (!long) return path;
  const time = nsToDate(node.mtimeNs).toISOString().replace('T', ' ').slice(0, 19);
  return `${modeString(node)} ${String(node.uid).padStart(5)} ${String(node.gid).padStart(5)} ${String(node.size).padStart(12)} ${time} ${path}${suffix}`;
}

export function lsCommand(): Command {
  return addFilterOptions(addRepoOptions(new Command('ls').description('list the files of a snapshot (below PATH, recursively)')))
    .argument('<snapshot>', 'snapshot id, unique prefix, or latest')
    .argument('[path]', 'directory or file inside the snapshot', '/')
    .option('-l, --long', 'show mode, owner, size and time')
    .action(async (ref: string, subpath: string, options: LsOptions) => {
      await withRepository(options, true, async (repo) => {
      const snap = await pickSnapshot(repo, ref, filterOf(options));
      const found = await findPath(repo, Buffer.from(snap.snapshot.tree, 'hex'), subpath);
      const base = Buffer.from(subpath.split('/').filter((p) => p !== '' && p !== '.').join('/'));
      const emit = (path: Buffer, node: TreeNode): void => {
        if (options.json) printJson({ path: displayPath(path), type: nodeTypeName(node.type), size: node.size, mode: node.mode, uid: node.uid, gid: node.gid, mtime: nsToDate(node.mtimeNs).toISOString(), ...(node.linkTarget ? { linkTarget: node.linkTarget.toString() } : {}) });
        else printLine(describe(displayPath(path), node, options.long ?? false));
      };
      if (!found.tree) {
        emit(base, found.node!);
        return;
      }
      for await (const entry of walkTree(repo, found.tree, base)) emit(entry.path, entry.node);
      });
    });
}

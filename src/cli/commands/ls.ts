import { Command } from 'commander';
import { nodeTypeName, NodeType } from '../../format/tree.ts';
import { nsToDate } from '../../engine/fs-meta.ts';
import { childPath, displayPath, walkTree } from '../../engine/tree-walk.ts';
import { formatTime } from '../format.ts';
import { printJson, printLine, printWarning, type JsonMessage } from '../output.ts';
import { addRepoOptions, withRepository, type RepoOptions } from '../repo-options.ts';
import { addFilterOptions, filterOf, partialNote, type FilterOptions } from './snapshots.ts';
import { openSnapshot, snapshotAndPath } from '../snapshot-arg.ts';
import type { TreeNode } from '../../format/tree.ts';

interface LsOptions extends RepoOptions, FilterOptions {
  readonly long?: boolean;
  readonly recursive?: boolean;
}

export function modeString(node: TreeNode): string {
  const kind = { [NodeType.Dir]: 'd', [NodeType.Symlink]: 'l', [NodeType.Fifo]: 'p', [NodeType.CharDevice]: 'c', [NodeType.BlockDevice]: 'b', [NodeType.Socket]: 's' }[
    node.type as number
  ];
  let bits = '';
  for (let i = 8; i >= 0; i--) bits += node.mode & (1 << i) ? 'rwx'[(8 - i) % 3] : '-';
  return (kind ?? '-') + bits;
}

/** One line of `ls -l` (or just the path). */
export function describeNode(path: string, node: TreeNode, long: boolean): string {
  const suffix = node.type === NodeType.Symlink ? ` -> ${node.linkTarget?.toString()}` : '';
  if (!long) return path;
  const time = formatTime(nsToDate(node.mtimeNs));
  return `${modeString(node)} ${String(node.uid).padStart(5)} ${String(node.gid).padStart(5)} ${String(node.size).padStart(12)} ${time} ${path}${suffix}`;
}

/** The JSON line of one node (ls, find). */
export function nodeJson(path: string, node: TreeNode): JsonMessage {
  return {
    type: 'node',
    path,
    nodeType: nodeTypeName(node.type),
    size: node.size,
    mode: node.mode,
    uid: node.uid,
    gid: node.gid,
    mtime: nsToDate(node.mtimeNs).toISOString(),
    ...(node.linkTarget ? { linkTarget: node.linkTarget.toString() } : {}),
  };
}

export function lsCommand(): Command {
  return addFilterOptions(addRepoOptions(new Command('ls').description('list a directory of a snapshot (everything, recursively, when no path is given)')))
    .argument('<snapshot>', 'snapshot id, unique prefix, or latest; SNAP:/path lists that path')
    .argument('[path]', 'directory or file inside the snapshot, as backed up (e.g. /home/ann/documents)')
    .option('-l, --long', 'show mode, owner, size and time')
    .option('-R, --recursive', 'list everything below the path, not just its entries')
    .action(async (arg: string, separate: string | undefined, options: LsOptions) => {
      const { ref, subpath } = snapshotAndPath(arg, separate);
      await withRepository(options, true, async (repo) => {
        const { view, stored } = await openSnapshot(repo, ref, filterOf(options));
        const note = partialNote(stored);
        if (note) printWarning(note);
        const found = await view.find(subpath);
        const emit = (path: Buffer, node: TreeNode): void => {
          if (options.json) printJson(nodeJson(displayPath(path), node));
          else printLine(describeNode(displayPath(path), node, options.long ?? false));
        };
        if (!found.tree) {
          emit(found.path, found.node!);
          return;
        }
        // Without a path, the whole snapshot, as before; a directory lists one level unless --recursive.
        if (options.recursive || subpath === '') {
          for await (const entry of walkTree(view, found.tree, found.path)) emit(entry.path, entry.node);
        } else {
          for (const node of await view.loadTree(found.tree)) emit(childPath(found.path, node.name), node);
        }
      });
    });
}

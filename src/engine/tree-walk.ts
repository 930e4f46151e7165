// Walking a snapshot's trees: depth-first, parents before children, names as raw bytes.
import { NodeType, type TreeNode } from '../format/tree.ts';
import type { TreeSource } from './snapshot-view.ts';

export interface WalkedNode {
  /** Path below the walk's start, raw bytes joined with '/', no leading slash. */
  readonly path: Buffer;
  readonly node: TreeNode;
}

const SLASH = Buffer.from('/');

export function childPath(parent: Buffer, name: Buffer): Buffer {
  return parent.length === 0 ? name : Buffer.concat([parent, SLASH, name]);
}

/** '/'-prefixed display form of a raw snapshot path. */
export function displayPath(path: Buffer): string {
  return `/${path.toString('utf8')}`;
}

/**
 * Yields every node below the tree `treeId`. `enter` decides whether a directory's children are
 * walked (default: all), so a restore with --include can skip subtrees it does not need.
 */
export async function* walkTree(
  trees: TreeSource,
  treeId: Buffer,
  prefix: Buffer = Buffer.alloc(0),
  enter: (entry: WalkedNode) => boolean = () => true,
): AsyncGenerator<WalkedNode> {
  for (const node of await trees.loadTree(treeId)) {
    const entry = { path: childPath(prefix, node.name), node };
    yield entry;
    if (node.type === NodeType.Dir && node.subtree && enter(entry)) yield* walkTree(trees, node.subtree, entry.path, enter);
  }
}

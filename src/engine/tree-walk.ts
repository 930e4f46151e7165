// Walking a snapshot's trees: depth-first, parents before children, names as raw bytes.
import { NodeType, type TreeNode } from '../format/tree.ts';
import type { Repository } from '../repo/repository.ts';
import { RepositoryError } from '../repo/repository.ts';

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
  repo: Repository,
  treeId: Buffer,
  prefix: Buffer = Buffer.alloc(0),
  enter: (entry: WalkedNode) => boolean = () => true,
): AsyncGenerator<WalkedNode> {
  for (const node of await repo.loadTree(treeId)) {
    const entry = { path: childPath(prefix, node.name), node };
    yield entry;
    if (node.type === NodeType.Dir && node.subtree && enter(entry)) yield* walkTree(repo, node.subtree, entry.path, enter);
  }
}

/** The tree id of the directory at `subpath` ('/a/b' or 'a/b'; '' or '/' is the root), or the node itself if it is not a directory. */
export async function findPath(repo: Repository, rootTree: Buffer, subpath: string): Promise<{ tree?: Buffer; node?: TreeNode }> {
  const parts = subpath.split('/').filter((p) => p !== '' && p !== '.');
  let tree = rootTree;
  let node: TreeNode | undefined;
  for (const [i, part] of parts.entries()) {
    const found = (await repo.loadTree(tree)).find((n) => n.name.equals(Buffer.from(part)));
    if (!found) throw new RepositoryError(`path /${parts.slice(0, i + 1).join('/')} is not in the snapshot; list it with coffer ls`);
    node = found;
    if (found.type === NodeType.Dir && found.subtree) tree = found.subtree;
    else if (i < parts.length - 1) throw new RepositoryError(`/${parts.slice(0, i + 1).join('/')} is not a directory in the snapshot`);
    else return { node: found };
  }
  return { tree, ...(node ? { node } : {}) };
}

// Merging the trees of a scaled-out backup's shards into the snapshot's root tree. Each shard's tree
// holds the root, the directories on the way to its parts and the parts themselves (shard-scope.ts). A
// name held by one shard only keeps its node as it is (same subtree id as a single walk's: dedup and diff
// work across single and sharded runs); a directory held by several shards (a split directory, or one
// above the sources) gets the union of their entries, its metadata from the first shard that holds it,
// and a tree encoded exactly as a single walk would have encoded it.
import { NodeType, compareNames, type TreeNode } from '../../format/tree.ts';
import type { TreeSource } from '../snapshot-view.ts';
import { childPath, displayPath, MAX_TREE_DEPTH, tooDeep } from '../tree-walk.ts';

export interface MergeHooks {
  /** Stores a directory's tree (if new) and returns its id. */
  readonly save: (nodes: TreeNode[]) => Buffer;
  readonly warn: (path: string, message: string) => void;
  readonly signal?: AbortSignal;
}

/** The merged root tree's id. `roots` are the shards' root trees, in shard order. */
export async function mergeTrees(trees: TreeSource, roots: readonly Buffer[], hooks: MergeHooks): Promise<Buffer> {
  if (roots.length === 0) return hooks.save([]);
  return mergeDir(trees, roots, Buffer.alloc(0), 0, hooks);
}

async function mergeDir(trees: TreeSource, ids: readonly Buffer[], at: Buffer, depth: number, hooks: MergeHooks): Promise<Buffer> {
  const distinct = ids.filter((id, i) => ids.findIndex((other) => other.equals(id)) === i);
  if (distinct.length === 1) return distinct[0]!;
  hooks.signal?.throwIfAborted();
  if (depth > MAX_TREE_DEPTH) throw tooDeep(displayPath(at));
  const byName = new Map<string, TreeNode[]>();
  for (const id of distinct) {
    for (const node of await trees.loadTree(id)) {
      const name = node.name.toString('latin1');
      const held = byName.get(name);
      if (held) held.push(node);
      else byName.set(name, [node]);
    }
  }
  const merged: TreeNode[] = [];
  for (const nodes of byName.values()) {
    const first = nodes[0]!;
    if (nodes.length === 1) {
      merged.push(first);
      continue;
    }
    const path = childPath(at, first.name);
    const notDir = nodes.find((n) => n.type !== NodeType.Dir || !n.subtree);
    if (notDir) {
      // The entry changed type while the shards ran (a split directory replaced by a file or link): the
      // shard that recorded the entry itself saw the newer state, and nothing below it is kept.
      hooks.warn(displayPath(path), 'changed type during the backup; its newest state is stored');
      merged.push(notDir);
      continue;
    }
    merged.push({ ...first, subtree: await mergeDir(trees, nodes.map((n) => n.subtree!), path, depth + 1, hooks) });
  }
  merged.sort((a, b) => compareNames(a.name, b.name));
  return hooks.save(merged);
}

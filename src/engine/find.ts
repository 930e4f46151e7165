// `coffer find`: entries whose name (or, for a pattern with '/', whose path) matches, in each snapshot.
// Patterns have the meaning of exclude patterns (restic's): '*.jpg', 'cv.*', '/home/*/docs'. A
// directory without matches is remembered (tree id and path), so the same directory in the next
// snapshot is skipped: searching many snapshots costs little more than searching one.
import { NodeType, type TreeNode } from '../format/tree.ts';
import { compileExcludes, type PathMatcher } from './backup/exclude.ts';
import type { SnapshotView } from './snapshot-view.ts';
import { Breather } from './breather.ts';
import { childPath, displayPath, MAX_TREE_DEPTH, tooDeep } from './tree-walk.ts';

export interface FindOptions {
  readonly patterns: readonly string[];
  readonly ignoreCase?: boolean;
  /** Only entries modified at or after / at or before these times (ms since 1970). */
  readonly oldest?: number;
  readonly newest?: number;
}

export interface Found {
  readonly path: string;
  readonly node: TreeNode;
}

export class Finder {
  private readonly matches: PathMatcher;
  private readonly oldest?: bigint;
  private readonly newest?: bigint;
  /** Tree id and path of directories with nothing to find below them. */
  private readonly barren = new Set<string>();

  constructor(options: FindOptions) {
    this.matches = compileExcludes(options.patterns, { caseInsensitive: options.ignoreCase ?? false });
    if (options.oldest !== undefined) this.oldest = BigInt(options.oldest) * 1_000_000n;
    if (options.newest !== undefined) this.newest = BigInt(options.newest) * 1_000_000n;
  }

  /**
   * Matches in one snapshot, in tree order. An explicit stack bounded at MAX_TREE_DEPTH: snapshots of
   * real trees reach thousands of levels, and a crafted one any depth.
   */
  async *find(view: SnapshotView): AsyncGenerator<Found> {
    const breather = new Breather();
    const stack: { key: string; nodes: TreeNode[]; next: number; path: Buffer; count: number }[] = [];
    const enter = async (tree: Buffer, path: Buffer): Promise<void> => {
      const key = `${tree.toString('hex')}:${path.toString('hex')}`;
      if (!this.barren.has(key)) stack.push({ key, nodes: await view.loadTree(tree), next: 0, path, count: 0 });
    };
    await enter(view.root, Buffer.alloc(0));
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const node = top.nodes[top.next++];
      if (!node) {
        stack.pop();
        if (top.count === 0) this.barren.add(top.key);
        else if (stack.length > 0) stack[stack.length - 1]!.count += top.count;
        continue;
      }
      await breather.pause();
      const path = childPath(top.path, node.name);
      // The directories made up above a 0.1.0 snapshot's sources are not entries of the backup.
      if (!view.isSynthetic(node) && this.wanted(node, path)) {
        top.count++;
        yield { path: displayPath(path), node };
      }
      if (node.type === NodeType.Dir && node.subtree) {
        if (stack.length >= MAX_TREE_DEPTH) throw tooDeep(displayPath(path));
        await enter(node.subtree, path);
      }
    }
  }

  private wanted(node: TreeNode, path: Buffer): boolean {
    if (this.oldest !== undefined && node.mtimeNs < this.oldest) return false;
    if (this.newest !== undefined && node.mtimeNs > this.newest) return false;
    return this.matches(displayPath(path), node.name.toString());
  }
}

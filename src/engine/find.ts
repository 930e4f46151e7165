// `coffer find`: entries whose name (or, for a pattern with '/', whose path) matches, in each snapshot.
// Patterns have the meaning of exclude patterns (restic's): '*.jpg', 'cv.*', '/home/*/docs'. A
// directory without matches is remembered (tree id and path), so the same directory in the next
// snapshot is skipped: searching many snapshots costs little more than searching one.
import { NodeType, type TreeNode } from '../format/tree.ts';
import { compileExcludes, type PathMatcher } from './backup/exclude.ts';
import type { SnapshotView } from './snapshot-view.ts';
import { childPath, displayPath } from './tree-walk.ts';

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

  /** Matches in one snapshot, in tree order. */
  async *find(view: SnapshotView): AsyncGenerator<Found> {
    yield* this.search(view, view.root, Buffer.alloc(0));
  }

  /** Yields the matches below a tree; returns how many there were. */
  private async *search(view: SnapshotView, tree: Buffer, prefix: Buffer): AsyncGenerator<Found, number> {
    const key = `${tree.toString('hex')}:${prefix.toString('hex')}`;
    if (this.barren.has(key)) return 0;
    let count = 0;
    for (const node of await view.loadTree(tree)) {
      const path = childPath(prefix, node.name);
      // The directories made up above a 0.1.0 snapshot's sources are not entries of the backup.
      if (!view.isSynthetic(node) && this.wanted(node, path)) {
        count++;
        yield { path: displayPath(path), node };
      }
      if (node.type === NodeType.Dir && node.subtree) count += yield* this.search(view, node.subtree, path);
    }
    if (count === 0) this.barren.add(key);
    return count;
  }

  private wanted(node: TreeNode, path: Buffer): boolean {
    if (this.oldest !== undefined && node.mtimeNs < this.oldest) return false;
    if (this.newest !== undefined && node.mtimeNs > this.newest) return false;
    return this.matches(displayPath(path), node.name.toString());
  }
}

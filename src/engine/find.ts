// `coffer find`: entries whose name (or, for a pattern with '/', whose path) matches, in each snapshot.
// Patterns have the meaning of exclude patterns (restic's): '*.jpg', 'cv.*', '/home/*/docs'.
import type { TreeNode } from '../format/tree.ts';
import { compileExcludes } from './backup/exclude.ts';
import type { SnapshotView } from './snapshot-view.ts';
import { displayPath, walkTree } from './tree-walk.ts';
import { NodeType } from '../format/tree.ts';

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

export async function* findInSnapshot(view: SnapshotView, options: FindOptions): AsyncGenerator<Found> {
  const matches = compileExcludes(options.patterns, { caseInsensitive: options.ignoreCase ?? false });
  const oldest = options.oldest === undefined ? undefined : BigInt(options.oldest) * 1_000_000n;
  const newest = options.newest === undefined ? undefined : BigInt(options.newest) * 1_000_000n;
  for await (const { path, node } of walkTree(view, view.root)) {
    // The directories made up above a 0.1.0 snapshot's sources are not entries of the backup.
    if (node.type === NodeType.Dir && view.isSynthetic(node)) continue;
    if (oldest !== undefined && node.mtimeNs < oldest) continue;
    if (newest !== undefined && node.mtimeNs > newest) continue;
    const shown = displayPath(path);
    if (matches(shown, node.name.toString())) yield { path: shown, node };
  }
}

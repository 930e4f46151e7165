// Differences between two snapshots: walks both trees side by side and skips every subtree whose id
// is the same in both (unchanged directories cost nothing).
import { NodeType, compareNames, type TreeNode } from '../format/tree.ts';
import type { SnapshotView, TreeSource } from './snapshot-view.ts';
import { Breather } from './breather.ts';
import { childPath, displayPath, MAX_TREE_DEPTH, tooDeep, walkTree } from './tree-walk.ts';

/** + added, - removed, M content changed, T type changed, U only metadata changed. */
export type ChangeKind = '+' | '-' | 'M' | 'T' | 'U';

export interface Change {
  readonly kind: ChangeKind;
  readonly path: string;
  readonly type: NodeType;
  readonly size: number;
}

function sameMeta(a: TreeNode, b: TreeNode): boolean {
  return a.mode === b.mode && a.uid === b.uid && a.gid === b.gid && a.mtimeNs === b.mtimeNs;
}

function sameContent(a: TreeNode, b: TreeNode): boolean {
  if (a.type === NodeType.File) return a.size === b.size && (a.content ?? Buffer.alloc(0)).equals(b.content ?? Buffer.alloc(0));
  if (a.type === NodeType.Symlink) return (a.linkTarget ?? Buffer.alloc(0)).equals(b.linkTarget ?? Buffer.alloc(0));
  if (a.type === NodeType.CharDevice || a.type === NodeType.BlockDevice) return a.rdev === b.rdev;
  return true;
}

async function* everything(trees: TreeSource, kind: '+' | '-', node: TreeNode, path: Buffer): AsyncGenerator<Change> {
  yield { kind, path: displayPath(path), type: node.type, size: node.size };
  if (node.type === NodeType.Dir && node.subtree) {
    for await (const e of walkTree(trees, node.subtree, path)) yield { kind, path: displayPath(e.path), type: e.node.type, size: e.node.size };
  }
}

/**
 * Changes from the tree `a` of snapshot `from` to the tree `b` of `to`, depth first. Directories are
 * compared side by side with an explicit stack (a deep tree cannot overflow it) and an unchanged subtree
 * costs nothing. Directories made up for 0.1.0 snapshots (see snapshot-view.ts) have no metadata of
 * their own to compare.
 */
export async function* diffTrees(from: SnapshotView, to: SnapshotView, a: Buffer = from.root, b: Buffer = to.root, prefix: Buffer = Buffer.alloc(0)): AsyncGenerator<Change> {
  if (a.equals(b)) return;
  const breather = new Breather();
  interface Frame {
    readonly left: TreeNode[];
    readonly right: TreeNode[];
    i: number;
    j: number;
    readonly prefix: Buffer;
  }
  const open = async (a: Buffer, b: Buffer, prefix: Buffer): Promise<Frame> => ({ left: await from.loadTree(a), right: await to.loadTree(b), i: 0, j: 0, prefix });
  const stack: Frame[] = [await open(a, b, prefix)];
  while (stack.length > 0) {
    const frame = stack[stack.length - 1]!;
    const l = frame.left[frame.i];
    const r = frame.right[frame.j];
    if (!l && !r) {
      stack.pop();
      continue;
    }
    await breather.pause();
    const order = !l ? 1 : !r ? -1 : compareNames(l.name, r.name);
    if (order < 0) {
      frame.i++;
      yield* everything(from, '-', l!, childPath(frame.prefix, l!.name));
      continue;
    }
    if (order > 0) {
      frame.j++;
      yield* everything(to, '+', r!, childPath(frame.prefix, r!.name));
      continue;
    }
    frame.i++;
    frame.j++;
    const path = childPath(frame.prefix, l!.name);
    if (l!.type !== r!.type) {
      yield { kind: 'T', path: displayPath(path), type: r!.type, size: r!.size };
    } else if (l!.type === NodeType.Dir) {
      const synthetic = from.isSynthetic(l!) || to.isSynthetic(r!);
      if (!synthetic && !sameMeta(l!, r!)) yield { kind: 'U', path: displayPath(path), type: r!.type, size: 0 };
      if (l!.subtree && r!.subtree && !l!.subtree.equals(r!.subtree)) {
        if (stack.length >= MAX_TREE_DEPTH) throw tooDeep(displayPath(path));
        stack.push(await open(l!.subtree, r!.subtree, path));
      }
    } else if (!sameContent(l!, r!)) {
      yield { kind: 'M', path: displayPath(path), type: r!.type, size: r!.size };
    } else if (!sameMeta(l!, r!)) {
      yield { kind: 'U', path: displayPath(path), type: r!.type, size: r!.size };
    }
  }
}

// Walking a snapshot's trees: depth-first, parents before children, names as raw bytes. A snapshot may
// have been written by someone hostile, so walks use an explicit stack (no recursion to overflow), stop
// at MAX_TREE_DEPTH, and let the event loop run (signals, progress) however fast trees come from the cache.
import { NodeType, type TreeNode } from '../format/tree.ts';
import { RepositoryError } from '../repo/repository.ts';
import { IdTable } from '../repo/id-table.ts';
import { Breather } from './breather.ts';
import type { TreeSource } from './snapshot-view.ts';

export interface WalkedNode {
  /** Path below the walk's start, raw bytes joined with '/', no leading slash. */
  readonly path: Buffer;
  readonly node: TreeNode;
}

/**
 * Directories nest at most this deep in a snapshot. A backup cannot get near it (paths longer than
 * 4096 bytes cannot be read), so a deeper tree was crafted; walking it would hold one open directory
 * (restore) or one stack frame per level.
 */
export const MAX_TREE_DEPTH = 4096;

const SLASH = Buffer.from('/');

export function childPath(parent: Buffer, name: Buffer): Buffer {
  return parent.length === 0 ? name : Buffer.concat([parent, SLASH, name]);
}

/** '/'-prefixed display form of a raw snapshot path. */
export function displayPath(path: Buffer): string {
  return `/${path.toString('utf8')}`;
}

export function tooDeep(path: string): RepositoryError {
  return new RepositoryError(`${path}: directories nest deeper than ${MAX_TREE_DEPTH} levels; the snapshot is damaged or was crafted`);
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
  const breather = new Breather();
  const stack: { nodes: TreeNode[]; next: number; path: Buffer }[] = [{ nodes: await trees.loadTree(treeId), next: 0, path: prefix }];
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    const node = top.nodes[top.next++];
    if (!node) {
      stack.pop();
      continue;
    }
    await breather.pause();
    const entry = { path: childPath(top.path, node.name), node };
    yield entry;
    if (node.type === NodeType.Dir && node.subtree && enter(entry)) {
      if (stack.length >= MAX_TREE_DEPTH) throw tooDeep(displayPath(entry.path));
      stack.push({ nodes: await trees.loadTree(node.subtree), next: 0, path: entry.path });
    }
  }
}

export interface TreeMeasure {
  /** Entries below the tree, each counted once per path that leads to it (what a restore creates). */
  readonly entries: number;
  readonly files: number;
  readonly bytes: number;
  /** Entries of the distinct trees below it (each tree counted once, however often it is reused). */
  readonly storedEntries: number;
}

/**
 * Counts what a walk of `treeId` would visit without walking it: each distinct tree is loaded once and
 * its totals remembered, so a tree reused along many paths (41 trees that each point twice at the next
 * give 2^40 paths) is measured in the time of reading 41 trees.
 */
export async function measureTree(trees: TreeSource, treeId: Buffer): Promise<TreeMeasure> {
  const breather = new Breather();
  // Per distinct tree: entries, files, bytes (as float64s).
  const measured = new IdTable(6);
  const record = new Float64Array(3);
  const words = new Uint32Array(record.buffer);
  let storedEntries = 0;
  interface Frame {
    readonly id: Buffer;
    readonly nodes: TreeNode[];
    next: number;
    entries: number;
    files: number;
    bytes: number;
  }
  const open = async (id: Buffer): Promise<Frame> => ({ id, nodes: await trees.loadTree(id), next: 0, entries: 0, files: 0, bytes: 0 });
  const stack: Frame[] = [await open(treeId)];
  for (;;) {
    const top = stack[stack.length - 1]!;
    const node = top.nodes[top.next++];
    if (node) {
      await breather.pause();
      top.entries++;
      if (node.type === NodeType.File) {
        top.files++;
        top.bytes += node.size;
      }
      if (node.type !== NodeType.Dir || !node.subtree) continue;
      const known = measured.find(node.subtree);
      if (known >= 0) {
        for (let w = 0; w < 6; w++) words[w] = measured.word(known, w);
        top.entries += record[0]!;
        top.files += record[1]!;
        top.bytes += record[2]!;
        continue;
      }
      if (stack.length >= MAX_TREE_DEPTH) throw tooDeep(`tree ${node.subtree.toString('hex').slice(0, 16)}`);
      stack.push(await open(node.subtree));
      continue;
    }
    stack.pop();
    storedEntries += top.nodes.length;
    record.set([top.entries, top.files, top.bytes]);
    measured.add(top.id, words);
    const parent = stack[stack.length - 1];
    if (!parent) return { entries: top.entries, files: top.files, bytes: top.bytes, storedEntries };
    parent.entries += top.entries;
    parent.files += top.files;
    parent.bytes += top.bytes;
  }
}

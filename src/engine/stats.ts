// `coffer stats`: how big snapshots are, in restic's four modes.
//   restore-size      files and bytes a restore would write (every snapshot counted in full);
//   files-by-contents files with distinct contents and their bytes;
//   raw-data          distinct blobs the snapshots reference, as stored (compressed, encrypted) and raw;
//   blobs-per-file    distinct data blobs and their raw bytes, files counted once per content.
// A tree reached twice (unchanged directories, other snapshots) is summed from a memo or skipped.
import { BlobType } from '../format/pack.ts';
import { NodeType, contentIds } from '../format/tree.ts';
import type { Repository } from '../repo/repository.ts';
import type { SnapshotView } from './snapshot-view.ts';
import { MAX_TREE_DEPTH, tooDeep } from './tree-walk.ts';

export type StatsMode = 'restore-size' | 'files-by-contents' | 'raw-data' | 'blobs-per-file';
export const STATS_MODES: readonly StatsMode[] = ['restore-size', 'files-by-contents', 'raw-data', 'blobs-per-file'];

export interface Stats {
  readonly mode: StatsMode;
  readonly snapshots: number;
  /** Files (restore-size: every file of every snapshot; otherwise distinct contents). */
  readonly files: number;
  /** Directories (restore-size only). */
  readonly dirs: number;
  /** Bytes: file sizes (restore-size, files-by-contents), raw blob bytes (blobs-per-file, raw-data). */
  readonly bytes: number;
  /** raw-data and blobs-per-file: distinct blobs; raw-data also counts trees. */
  readonly blobs: number;
  /** raw-data: bytes as stored in packs (after compression and encryption). */
  readonly storedBytes: number;
}

interface Totals {
  files: number;
  dirs: number;
  bytes: number;
}

export class StatsCollector {
  private readonly repo: Repository;
  readonly mode: StatsMode;
  private snapshots = 0;
  private readonly totals: Totals = { files: 0, dirs: 0, bytes: 0 };
  private blobs = 0;
  private storedBytes = 0;
  private readonly seenTrees = new Set<string>();
  private readonly seenBlobs = new Set<string>();
  private readonly seenContents = new Set<string>();
  private readonly treeTotals = new Map<string, Totals>();

  constructor(repo: Repository, mode: StatsMode) {
    this.repo = repo;
    this.mode = mode;
  }

  async add(view: SnapshotView): Promise<void> {
    this.snapshots++;
    if (this.mode === 'restore-size') {
      const t = await this.treeSize(view, view.root);
      this.totals.files += t.files;
      this.totals.dirs += t.dirs;
      this.totals.bytes += t.bytes;
    } else {
      await this.visit(view, view.root);
    }
  }

  result(): Stats {
    return { mode: this.mode, snapshots: this.snapshots, ...this.totals, blobs: this.blobs, storedBytes: this.storedBytes };
  }

  /**
   * Files, directories and bytes below a tree, memoised by tree id (unchanged directories cost nothing).
   * Depth-bounded like every walk: a crafted chain of trees must not hold a frame per level without end.
   */
  private async treeSize(view: SnapshotView, id: Buffer, depth = 0): Promise<Totals> {
    const key = id.toString('hex');
    const known = this.treeTotals.get(key);
    if (known) return known;
    if (depth >= MAX_TREE_DEPTH) throw tooDeep(`tree ${key.slice(0, 16)}`);
    const t: Totals = { files: 0, dirs: 0, bytes: 0 };
    for (const node of await view.loadTree(id)) {
      if (node.type === NodeType.Dir) {
        if (!view.isSynthetic(node)) t.dirs++;
        if (node.subtree) {
          const sub = await this.treeSize(view, node.subtree, depth + 1);
          t.files += sub.files;
          t.dirs += sub.dirs;
          t.bytes += sub.bytes;
        }
      } else {
        t.files++;
        t.bytes += node.size;
      }
    }
    this.treeTotals.set(key, t);
    return t;
  }

  private addBlob(id: Buffer, type: BlobType): number {
    const key = id.toString('base64');
    if (this.seenBlobs.has(key)) return 0;
    this.seenBlobs.add(key);
    const loc = this.repo.index.lookup(id);
    // A blob missing from the index is damage that check reports; stats counts what it can find.
    if (!loc || loc.type !== type) return 0;
    this.blobs++;
    this.storedBytes += loc.length;
    return loc.rawLength;
  }

  /** Each distinct tree once: distinct contents and blobs. */
  private async visit(view: SnapshotView, id: Buffer, depth = 0): Promise<void> {
    const key = id.toString('hex');
    if (this.seenTrees.has(key)) return;
    if (depth >= MAX_TREE_DEPTH) throw tooDeep(`tree ${key.slice(0, 16)}`);
    this.seenTrees.add(key);
    // The directories a view makes up above a 0.1.0 snapshot's sources are in no pack: addBlob skips them.
    if (this.mode === 'raw-data') this.totals.bytes += this.addBlob(id, BlobType.Tree);
    for (const node of await view.loadTree(id)) {
      if (node.type === NodeType.Dir) {
        if (node.subtree) await this.visit(view, node.subtree, depth + 1);
        continue;
      }
      if (node.type !== NodeType.File) continue;
      const content = (node.content ?? Buffer.alloc(0)).toString('base64');
      const newContent = !this.seenContents.has(content);
      if (newContent) this.seenContents.add(content);
      if (this.mode === 'files-by-contents') {
        if (newContent) {
          this.totals.files++;
          this.totals.bytes += node.size;
        }
        continue;
      }
      if (newContent && this.mode === 'blobs-per-file') this.totals.files++;
      for (const chunk of contentIds(node)) this.totals.bytes += this.addBlob(chunk, BlobType.Data);
    }
  }
}

// Splitting a backup's sources into shards of about equal work for several workers.
//
// Work is weighed as bytes plus a fixed cost per file and directory (opening a file, listing a
// directory). With a previous snapshot of the same sources the weights are its sizes and file counts (no
// file system access; identical sub-trees are weighed once). Without one, the sources are scanned
// (lstat only, the exclude rules applied), from the top-level directories down.
//
// A source lighter than the target weight is one part. A heavier one is split: its entries are cut into
// consecutive name ranges of about the target weight, and an entry that is itself a directory heavier
// than the target is split in turn (its own ranges cover it). Consecutive parts are then packed into
// shards of about the target weight: several shards per worker, so a worker that is slow or loaded takes
// fewer and the last shard does not hold the end back. Ranges are half-open intervals of names, so what
// was added since the split is backed up too.
import fs from 'node:fs';
import { NodeType } from '../../format/tree.ts';
import type { Selection } from '../backup/selection.ts';
import { entersDirectory, listDirectory, walkRules, type WalkRules } from '../backup/source-walk.ts';
import { sourceTrie, type SourceTrie } from '../backup/source-trie.ts';
import { Breather } from '../breather.ts';
import { joinPath } from '../fs-meta.ts';
import type { SnapshotView } from '../snapshot-view.ts';
import type { ShardPart, ShardPlan, Shard } from './shard-plan.ts';

/** What opening and reading a file or listing a directory costs, in bytes of reading. */
export const ENTRY_COST = 64 * 1024;
export const DEFAULT_SHARDS_PER_WORKER = 4;
export const DEFAULT_MIN_SHARD_WEIGHT = 64 * 1024 * 1024;

export interface SplitOptions {
  /** Absolute source paths. */
  readonly paths: readonly string[];
  readonly workers: number;
  readonly selection?: Selection;
  readonly oneFileSystem?: boolean;
  /** The previous snapshot of the same sources: weights from its trees, no scan. */
  readonly parent?: SnapshotView;
  /** Shards per worker (default 4). */
  readonly shardsPerWorker?: number;
  /** No part or shard is cut smaller than this weight (bytes plus ENTRY_COST per entry). */
  readonly minShardWeight?: number;
  readonly signal?: AbortSignal;
}

interface Weight {
  weight: number;
  files: number;
  bytes: number;
}

/** A directory to weigh or split: a tree of the previous snapshot, or a directory on disk. */
type DirRef = { readonly tree: Buffer } | { readonly path: Buffer; readonly rules: WalkRules };

interface SplitEntry {
  readonly name: Buffer;
  readonly file: boolean;
  readonly bytes: number;
  /** Set on a directory the walk enters. */
  readonly dir?: DirRef;
}

const zero = (): Weight => ({ weight: 0, files: 0, bytes: 0 });

function add(to: Weight, w: Weight): void {
  to.weight += w.weight;
  to.files += w.files;
  to.bytes += w.bytes;
}

function leafWeight(e: SplitEntry): Weight {
  return { weight: e.bytes + ENTRY_COST, files: e.file ? 1 : 0, bytes: e.bytes };
}

export class Splitter {
  private readonly options: SplitOptions;
  /** Directories weighed so far, by tree id (hex) or path (latin1). */
  private readonly weights = new Map<string, Weight>();
  private readonly breather = new Breather();

  constructor(options: SplitOptions) {
    this.options = options;
  }

  async plan(): Promise<ShardPlan> {
    const rules = walkRules(this.options.selection ?? {});
    const sources: { path: string; entry: SplitEntry | undefined }[] = [];
    const trie: SourceTrie[] = [sourceTrie(this.options.paths)];
    while (trie.length > 0) {
      const at = trie.pop()!;
      if (at.source) sources.push({ path: at.path, entry: await this.sourceEntry(at.path, rules) });
      else trie.push(...at.children.values());
    }
    sources.sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
    const total = zero();
    for (const { entry } of sources) if (entry) add(total, entry.dir ? await this.weigh(entry.dir) : leafWeight(entry));
    const shardCount = Math.max(1, this.options.workers) * (this.options.shardsPerWorker ?? DEFAULT_SHARDS_PER_WORKER);
    const target = Math.max(this.options.minShardWeight ?? DEFAULT_MIN_SHARD_WEIGHT, total.weight / shardCount);
    const parts: { part: ShardPart; w: Weight }[] = [];
    const split: Buffer[] = [];
    for (const { path, entry } of sources) {
      const w = entry ? (entry.dir ? await this.weigh(entry.dir) : leafWeight(entry)) : zero();
      if (!entry?.dir || w.weight <= target) parts.push({ part: { kind: 'source', path }, w });
      else await this.splitDirectory(Buffer.from(path), entry.dir, target, parts, split);
    }
    const shards: Shard[] = [];
    let open: { parts: ShardPart[]; w: Weight } = { parts: [], w: zero() };
    const close = (): void => {
      shards.push({ parts: open.parts, files: open.w.files, bytes: open.w.bytes });
      open = { parts: [], w: zero() };
    };
    for (const { part, w } of parts) {
      if (open.parts.length > 0 && open.w.weight + w.weight > target) close();
      open.parts.push(part);
      add(open.w, w);
    }
    if (open.parts.length > 0) close();
    return { paths: this.options.paths, split, shards };
  }

  /** Cuts a heavy directory into ranges of its entries; its heavy sub-directories are split in turn. */
  private async splitDirectory(path: Buffer, dir: DirRef, target: number, parts: { part: ShardPart; w: Weight }[], split: Buffer[]): Promise<void> {
    const todo: { path: Buffer; dir: DirRef }[] = [{ path, dir }];
    while (todo.length > 0) {
      const at = todo.pop()!;
      split.push(at.path);
      let range: { from?: Buffer; w: Weight } = { w: zero() };
      const close = (to: Buffer | undefined): void => {
        parts.push({ part: { kind: 'range', dir: at.path, ...(range.from ? { from: range.from } : {}), ...(to ? { to } : {}) }, w: range.w });
      };
      for (const entry of await this.list(at.dir)) {
        const w = entry.dir ? await this.weigh(entry.dir) : leafWeight(entry);
        if (entry.dir && w.weight > target) {
          todo.push({ path: joinPath(at.path, entry.name), dir: entry.dir });
          continue;
        }
        if (range.w.weight > 0 && range.w.weight + w.weight > target) {
          close(entry.name);
          range = { from: entry.name, w: zero() };
        }
        add(range.w, w);
      }
      close(undefined);
    }
  }

  /** The source as the split sees it; undefined when it is missing (the workers report that). */
  private async sourceEntry(path: string, rules: WalkRules): Promise<SplitEntry | undefined> {
    const name = Buffer.from(path);
    const parent = this.options.parent;
    const found = parent ? await parent.find(path).catch(() => undefined) : undefined;
    if (found?.tree) return { name, file: false, bytes: 0, dir: { tree: found.tree } };
    if (found?.node) return { name, file: found.node.type === NodeType.File, bytes: found.node.size };
    const stat = fs.lstatSync(path, { bigint: true, throwIfNoEntry: false });
    if (!stat) return undefined;
    if (!stat.isDirectory()) return { name, file: stat.isFile(), bytes: stat.isFile() ? Number(stat.size) : 0 };
    return { name, file: false, bytes: 0, dir: { path: name, rules: this.options.oneFileSystem ? { ...rules, rootDevice: stat.dev } : rules } };
  }

  private key(dir: DirRef): string {
    return 'tree' in dir ? dir.tree.toString('hex') : dir.path.toString('latin1');
  }

  /** A directory's entries sorted by name. */
  private async list(dir: DirRef): Promise<SplitEntry[]> {
    this.options.signal?.throwIfAborted();
    await this.breather.pause();
    if ('tree' in dir) {
      return (await this.options.parent!.loadTree(dir.tree)).map((n) => ({
        name: n.name,
        file: n.type === NodeType.File,
        bytes: n.type === NodeType.File ? n.size : 0,
        ...(n.type === NodeType.Dir && n.subtree ? { dir: { tree: n.subtree } } : {}),
      }));
    }
    const { rules } = dir;
    return listDirectory(dir.path, rules)
      .entries.map((e) => ({
        name: e.name,
        file: e.stat.isFile(),
        bytes: e.stat.isFile() ? Number(e.stat.size) : 0,
        ...(e.stat.isDirectory() && entersDirectory(e.stat, rules) ? { dir: { path: e.path, rules } } : {}),
      }))
      .sort((a, b) => Buffer.compare(a.name, b.name));
  }

  /** A directory's weight with everything below it, depth first with an explicit stack. */
  private async weigh(root: DirRef): Promise<Weight> {
    const known = this.weights.get(this.key(root));
    if (known) return known;
    const dirCost = (): Weight => ({ weight: ENTRY_COST, files: 0, bytes: 0 });
    const stack = [{ dir: root, entries: await this.list(root), next: 0, total: dirCost() }];
    for (;;) {
      const top = stack[stack.length - 1]!;
      const entry = top.entries[top.next++];
      if (!entry) {
        stack.pop();
        this.weights.set(this.key(top.dir), top.total);
        if (stack.length === 0) return top.total;
        add(stack[stack.length - 1]!.total, top.total);
        continue;
      }
      if (!entry.dir) {
        add(top.total, leafWeight(entry));
        continue;
      }
      const weighed = this.weights.get(this.key(entry.dir));
      if (weighed) add(top.total, weighed);
      else stack.push({ dir: entry.dir, entries: await this.list(entry.dir), next: 0, total: dirCost() });
    }
  }
}

// Every snapshot of a repository as one read-only file system, for `serve webdav` and `mount`:
//   /                                 one directory per snapshot, named by its time and id, and `latest`
//   /2026-11-23T16-45-30Z-1a2b3c4d/   the snapshot's root: its sources at their full paths
// Paths are raw bytes below a snapshot (names that are not UTF-8 survive). Lookups and file chunks are
// cached, so the many small reads of a file-system client do not each fetch and decrypt a chunk.
import { BlobType } from '../format/pack.ts';
import { ID_BYTES } from '../format/crypto.ts';
import { NodeType, contentIds, type TreeNode } from '../format/tree.ts';
import type { Repository, StoredSnapshot } from '../repo/repository.ts';
import { SnapshotView } from './snapshot-view.ts';

export interface FsEntry {
  /** Raw name ('' for the root). */
  readonly name: Buffer;
  readonly type: NodeType;
  readonly size: number;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly mtime: Date;
  /** The tree node (absent for the root and the snapshot directories). */
  readonly node?: TreeNode;
  /** A directory: where its entries come from. */
  readonly dir?: { readonly view: SnapshotView; readonly tree: Buffer } | { readonly top: true };
}

const SNAPSHOT_LIST_TTL_MS = 10_000;
const LOOKUP_CACHE = 20_000;
const CHUNK_CACHE = 32;

/** '2026-11-23T16:45:30.102Z' + id → '2026-11-23T16-45-30Z-1a2b3c4d' (no ':' for Windows and Finder). */
export function snapshotDirName(s: StoredSnapshot): string {
  return `${s.snapshot.time.replace(/\.\d+Z$/, 'Z').replace(/:/g, '-')}-${s.id.slice(0, 8)}`;
}

/** A small map that forgets its oldest entries. */
class Lru<K, V> {
  private readonly map = new Map<K, V>();
  private readonly limit: number;

  constructor(limit: number) {
    this.limit = limit;
  }

  get(key: K): V | undefined {
    const value = this.map.get(key);
    if (value !== undefined) {
      this.map.delete(key);
      this.map.set(key, value);
    }
    return value;
  }

  delete(key: K): void {
    this.map.delete(key);
  }

  set(key: K, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    if (this.map.size > this.limit) this.map.delete(this.map.keys().next().value as K);
  }
}

export class SnapshotFs {
  private readonly repo: Repository;
  private snapshots: { at: number; byName: Map<string, StoredSnapshot> } | undefined;
  private readonly views = new Map<string, Promise<SnapshotView>>();
  private readonly lookups = new Lru<string, FsEntry | null>(LOOKUP_CACHE);
  private readonly chunks = new Lru<string, Promise<Buffer>>(CHUNK_CACHE);
  private readonly starts = new WeakMap<TreeNode, Float64Array>();
  private readonly started = new Date();

  constructor(repo: Repository) {
    this.repo = repo;
  }

  /** Snapshot directory names → snapshots, listed again every few seconds (new backups appear). */
  private async snapshotDirs(): Promise<Map<string, StoredSnapshot>> {
    if (this.snapshots && Date.now() - this.snapshots.at < SNAPSHOT_LIST_TTL_MS) return this.snapshots.byName;
    const list = await this.repo.listSnapshots();
    const byName = new Map(list.map((s) => [snapshotDirName(s), s]));
    const newest = list[list.length - 1];
    if (newest) byName.set('latest', newest);
    this.snapshots = { at: Date.now(), byName };
    return byName;
  }

  private view(s: StoredSnapshot): Promise<SnapshotView> {
    let view = this.views.get(s.id);
    if (!view) {
      view = SnapshotView.open(this.repo, s.snapshot);
      view.catch(() => this.views.delete(s.id));
      this.views.set(s.id, view);
    }
    return view;
  }

  private topEntry(name: string, time: Date): FsEntry {
    return { name: Buffer.from(name), type: NodeType.Dir, size: 0, mode: 0o555, uid: 0, gid: 0, mtime: time, dir: { top: true } };
  }

  private nodeEntry(view: SnapshotView, node: TreeNode): FsEntry {
    return {
      name: node.name,
      type: node.type,
      size: node.size,
      mode: node.mode,
      uid: node.uid,
      gid: node.gid,
      mtime: new Date(Number(node.mtimeNs / 1_000_000n)),
      node,
      ...(node.type === NodeType.Dir && node.subtree ? { dir: { view, tree: node.subtree } } : {}),
    };
  }

  /** The entry at a path given as raw components, or undefined if there is none. */
  async lookup(parts: readonly Buffer[]): Promise<FsEntry | undefined> {
    if (parts.length === 0) return this.topEntry('', this.started);
    const key = parts.map((p) => p.toString('hex')).join('/');
    const cached = this.lookups.get(key);
    // The snapshot directories themselves are not cached: the list changes.
    if (cached !== undefined && parts.length > 1) return cached ?? undefined;
    const found = await this.resolve(parts);
    if (parts.length > 1) this.lookups.set(key, found ?? null);
    return found;
  }

  private async resolve(parts: readonly Buffer[]): Promise<FsEntry | undefined> {
    const stored = (await this.snapshotDirs()).get(parts[0]!.toString());
    if (!stored) return undefined;
    const view = await this.view(stored);
    if (parts.length === 1) return { ...this.topEntry(parts[0]!.toString(), new Date(stored.snapshot.time)), dir: { view, tree: view.root } };
    const parent = await this.lookup(parts.slice(0, -1));
    if (!parent?.dir || !('view' in parent.dir)) return undefined;
    const name = parts[parts.length - 1]!;
    const node = (await view.loadTree(parent.dir.tree)).find((n) => n.name.equals(name));
    return node ? this.nodeEntry(view, node) : undefined;
  }

  /** The entries of a directory. */
  async list(dir: FsEntry): Promise<FsEntry[]> {
    if (!dir.dir) return [];
    if ('top' in dir.dir) {
      return [...(await this.snapshotDirs()).entries()].map(([name, s]) => this.topEntry(name, new Date(s.snapshot.time)));
    }
    const { view, tree } = dir.dir;
    return (await view.loadTree(tree)).map((n) => this.nodeEntry(view, n));
  }

  /** Where each chunk of a file starts (and, last, its end), from the index's raw lengths. */
  private chunkStarts(file: TreeNode): Float64Array {
    let starts = this.starts.get(file);
    if (!starts) {
      const ids = contentIds(file);
      starts = new Float64Array(ids.length + 1);
      for (const [i, id] of ids.entries()) {
        const size = this.repo.index.lookup(id)?.rawLength;
        if (size === undefined) throw new Error(`chunk ${id.toString('hex').slice(0, 16)} is not in the index; run coffer check`);
        starts[i + 1] = starts[i]! + size;
      }
      this.starts.set(file, starts);
    }
    return starts;
  }

  /** Bytes [offset, offset + length) of a file (fewer at its end). */
  async read(file: TreeNode, offset: number, length: number): Promise<Buffer> {
    const starts = this.chunkStarts(file);
    const end = Math.min(file.size, offset + length);
    // The last chunk that starts at or before offset (binary search).
    let lo = 0;
    let hi = starts.length - 2;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    const parts: Buffer[] = [];
    for (let i = lo; i < starts.length - 1 && starts[i]! < end; i++) {
      const chunk = await this.chunk(file.content!.subarray(i * ID_BYTES, (i + 1) * ID_BYTES));
      parts.push(chunk.subarray(Math.max(0, offset - starts[i]!), Math.min(chunk.length, end - starts[i]!)));
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  private chunk(id: Buffer): Promise<Buffer> {
    const key = id.toString('base64');
    let chunk = this.chunks.get(key);
    if (!chunk) {
      chunk = this.repo.readBlob(id, BlobType.Data);
      // A failed read is not remembered: the next one tries again (another replica may answer).
      chunk.catch(() => this.chunks.delete(key));
      this.chunks.set(key, chunk);
    }
    return chunk;
  }
}

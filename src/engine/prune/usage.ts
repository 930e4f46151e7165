// Which blobs the snapshots need: every tree of every snapshot is walked once (a tree shared by many
// snapshots is read once), and each blob it names is marked in a bit set indexed by its entry number in
// the index: the writer's main index, or the held-back one (blobs whose only copy is in a doomed pack).
import { toHex } from '../../format/bytes.ts';
import { BlobType } from '../../format/pack.ts';
import { NodeType } from '../../format/tree.ts';
import { ID_BYTES } from '../../format/crypto.ts';
import type { Repository, StoredSnapshot } from '../../repo/repository.ts';
import { BitSet, IdStack } from './bits.ts';

/** A blob a snapshot needs that no index lists, or a tree that cannot be read. */
export interface MissingData {
  readonly snapshot: string;
  readonly blob: string;
  readonly reason: string;
}

const MISSING_KEPT = 20;

export class BlobUsage {
  private readonly repo: Repository;
  /** Marks over `repo.index` entries. */
  readonly main = new BitSet();
  /** Marks over `repo.heldBack` entries. */
  readonly held = new BitSet();
  /** The first few problems found (all are counted). */
  readonly missing: MissingData[] = [];
  missingCount = 0;
  trees = 0;
  readonly walked = new Set<string>();

  constructor(repo: Repository) {
    this.repo = repo;
  }

  private problem(snapshot: string, blob: Uint8Array, reason: string): void {
    this.missingCount++;
    if (this.missing.length < MISSING_KEPT) this.missing.push({ snapshot, blob: toHex(blob), reason });
  }

  /** Marks a blob; returns whether it was not marked before (false also when it is nowhere). */
  private mark(id: Uint8Array, snapshot: string, type: BlobType): boolean {
    const n = this.repo.index.blobNumber(id);
    if (n >= 0) {
      if (this.repo.index.blobType(n) !== type) this.problem(snapshot, id, `indexed as a ${type === BlobType.Tree ? 'data' : 'tree'} blob`);
      return this.main.set(n);
    }
    const h = this.repo.heldBack.blobNumber(id);
    if (h >= 0) return this.held.set(h);
    this.problem(snapshot, id, 'no index lists it');
    return false;
  }

  /** Whether blob `id` is needed (after walking), wherever it is indexed. */
  isUsed(id: Uint8Array): boolean {
    const n = this.repo.index.blobNumber(id);
    if (n >= 0 && this.main.has(n)) return true;
    const h = this.repo.heldBack.blobNumber(id);
    return h >= 0 && this.held.has(h);
  }

  /** Marks everything one snapshot needs. */
  async walk(s: StoredSnapshot, signal?: AbortSignal): Promise<void> {
    if (this.walked.has(s.id)) return;
    this.walked.add(s.id);
    const stack = new IdStack();
    const root = Buffer.from(s.snapshot.tree, 'hex');
    if (this.mark(root, s.id, BlobType.Tree)) stack.push(root);
    for (let id = stack.pop(); id; id = stack.pop()) {
      signal?.throwIfAborted();
      let nodes;
      try {
        nodes = await this.repo.loadTree(id);
      } catch (err) {
        this.problem(s.id, id, `tree cannot be read: ${(err as Error).message}`);
        continue;
      }
      this.trees++;
      for (const node of nodes) {
        if (node.type === NodeType.File && node.content) {
          for (let i = 0; i < node.content.length; i += ID_BYTES) this.mark(node.content.subarray(i, i + ID_BYTES), s.id, BlobType.Data);
        } else if (node.type === NodeType.Dir && node.subtree && this.mark(node.subtree, s.id, BlobType.Tree)) {
          stack.push(node.subtree);
        }
      }
    }
  }
}

// Storing blobs from outside a backup (repair, copy): each blob is compressed, sealed into a new pack
// unless the writer's index already has it, and the packs go to every store of the repository. A blob
// whose only copy is in a doomed pack counts as missing and is stored again (FORMAT.md 12.3).
import { compress } from '../format/compression.ts';
import { blobId } from '../format/crypto.ts';
import { BlobType } from '../format/pack.ts';
import { encodeTree, type TreeNode } from '../format/tree.ts';
import type { IndexedPack } from '../format/index-file.ts';
import type { Repository } from '../repo/repository.ts';
import { packName } from '../store/store.ts';
import { DEFAULT_PACK_SIZE } from './backup/backup.ts';
import { INDEX_FILE_BLOBS } from './prune/index-files.ts';
import { PackBuilder } from './prune/repack.ts';

export class BlobWriter {
  private readonly repo: Repository;
  private readonly builder: PackBuilder;
  /** Blobs sealed in this run but not in the repository's index yet (hex). */
  private readonly added = new Set<string>();
  /** Packs on every store and not yet in an index file. */
  private durable: IndexedPack[] = [];
  private durableBlobs = 0;
  private checkpointing: Promise<void> = Promise.resolve();
  bytesAdded = 0;
  blobsAdded = 0;

  constructor(repo: Repository, packSize = DEFAULT_PACK_SIZE) {
    this.repo = repo;
    this.builder = new PackBuilder(repo, packSize, async (sealed) => {
      await Promise.all(repo.stores.map((s) => s.put(packName(sealed.id), sealed.bytes)));
      this.durable.push({ id: Buffer.from(sealed.id, 'hex'), salt: sealed.salt, entries: sealed.entries });
      this.durableBlobs += sealed.entries.length;
      // Index files as checkpoints, as a backup writes them: a long copy that stops keeps its work.
      if (this.durableBlobs >= INDEX_FILE_BLOBS) await this.checkpoint();
    });
  }

  /** An index file for the packs stored so far. */
  private checkpoint(): Promise<void> {
    const packs = this.durable;
    this.durable = [];
    this.durableBlobs = 0;
    this.checkpointing = this.checkpointing.then(async () => {
      if (packs.length === 0) return;
      const index = this.repo.sealIndex(packs);
      await Promise.all(this.repo.stores.map((s) => s.put(index.name, index.bytes)));
      for (const pack of packs) this.repo.index.addPack(pack);
    });
    return this.checkpointing;
  }

  /** Whether the writer may refer to blob `id` as it is (indexed outside doomed packs, or added now). */
  has(id: Uint8Array): boolean {
    return this.repo.index.has(id) || this.added.has(Buffer.from(id).toString('hex'));
  }

  /** Stores `raw` as a blob of `type` unless it is there already; returns its id. */
  async store(type: BlobType, raw: Uint8Array, id: Buffer = blobId(this.repo.idKey, raw)): Promise<Buffer> {
    if (this.has(id)) return id;
    await this.builder.add(type, id, compress(raw), raw.length);
    this.added.add(id.toString('hex'));
    this.bytesAdded += raw.length;
    this.blobsAdded++;
    return id;
  }

  storeTree(nodes: readonly TreeNode[]): Promise<Buffer> {
    return this.store(BlobType.Tree, encodeTree(nodes));
  }

  /** Makes sure a blob the writer refers to is not held back: if it is, reads it and stores it again. */
  async keep(id: Buffer, type: BlobType): Promise<void> {
    if (!this.has(id)) await this.store(type, await this.repo.readBlob(id, type), id);
  }

  /**
   * Seals the open packs, waits until every pack is on every store and listed in a durable index file,
   * so snapshots may follow (invariant 2).
   */
  async finish(): Promise<void> {
    await this.builder.finish();
    await this.checkpoint();
  }
}

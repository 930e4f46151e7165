// Stores directory trees: encodes a directory's nodes, names the encoding by its keyed hash, and packs
// it into a tree pack unless the repository (or this run) already holds it.
import { compress } from '../../format/compression.ts';
import { blobId } from '../../format/crypto.ts';
import { MAX_TREE_BYTES, MAX_TREE_ENTRIES } from '../../format/limits.ts';
import { BlobType, PackWriter, type SealedPack } from '../../format/pack.ts';
import { encodeTree, type TreeNode } from '../../format/tree.ts';
import type { Repository } from '../../repo/repository.ts';

export class TreeSaver {
  private readonly repo: Repository;
  private readonly packSize: number;
  private readonly onPack: (pack: SealedPack) => void;
  private packer: PackWriter;
  private readonly inOpenPack = new Set<string>();
  newTrees = 0;

  constructor(repo: Repository, packSize: number, onPack: (pack: SealedPack) => void) {
    this.repo = repo;
    this.packSize = packSize;
    this.onPack = onPack;
    this.packer = new PackWriter(repo.keys.dataKey, { capacity: packSize + 1024 * 1024 });
  }

  /**
   * Returns the tree's id; stores the tree if it is new. A directory whose tree would be bigger than
   * readers accept is stored empty (`tooBig` says so), never as a tree no restore could read.
   */
  save(nodes: readonly TreeNode[], tooBig?: () => void): Buffer {
    let bytes = nodes.length > MAX_TREE_ENTRIES ? undefined : encodeTree(nodes);
    if (!bytes || bytes.length > MAX_TREE_BYTES) {
      tooBig?.();
      bytes = encodeTree([]);
    }
    const id = blobId(this.repo.idKey, bytes);
    const key = id.toString('base64');
    if (this.repo.index.has(id) || this.inOpenPack.has(key)) return id;
    this.packer.add(BlobType.Tree, id, compress(bytes), bytes.length);
    this.inOpenPack.add(key);
    this.newTrees++;
    if (this.packer.size >= this.packSize) this.flush();
    return id;
  }

  /** Seals the open tree pack, if it holds anything. */
  flush(): void {
    if (this.packer.count === 0) return;
    const sealed = this.packer.seal();
    // Indexed by onPack before the set is cleared, so a tree saved in between is still found.
    this.onPack(sealed);
    this.inOpenPack.clear();
    this.packer = new PackWriter(this.repo.keys.dataKey, { capacity: this.packSize + 1024 * 1024 });
  }
}

// Writing crafted objects into a real repository, as someone holding its passphrase could: trees with
// hostile names and shapes, snapshots with odd fields, index files that lie. Tests then run the real
// command line against the result.
import zlib from 'node:zlib';
import { compress, compressPayload } from '../../src/format/compression.ts';
import { blobId, contentId, sealObject } from '../../src/format/crypto.ts';
import { BlobType, PackWriter } from '../../src/format/pack.ts';
import type { IndexedPack } from '../../src/format/index-file.ts';
import { encodeTree, NodeType, type TreeNode } from '../../src/format/tree.ts';
import { Repository } from '../../src/repo/repository.ts';
import { LocalStore } from '../../src/store/local.ts';
import { packName } from '../../src/store/store.ts';
import { PASSWORD } from './cli.ts';

const META = { mode: 0o755, uid: 0, gid: 0, mtimeNs: 1_600_000_000_000_000_000n, ctimeNs: 0n, inode: 1n, device: 1n, links: 1, size: 0 };

function named(name: string | Buffer): Buffer {
  return typeof name === 'string' ? Buffer.from(name) : name;
}

export const craftNode = {
  dir: (name: string | Buffer, subtree: Buffer, meta: Partial<TreeNode> = {}): TreeNode => ({ ...META, type: NodeType.Dir, name: named(name), subtree, ...meta }),
  file: (name: string | Buffer, chunks: Buffer[], size: number, meta: Partial<TreeNode> = {}): TreeNode => ({
    ...META,
    mode: 0o644,
    type: NodeType.File,
    name: named(name),
    content: Buffer.concat(chunks),
    size,
    ...meta,
  }),
  symlink: (name: string | Buffer, target: string): TreeNode => ({ ...META, mode: 0o777, type: NodeType.Symlink, name: named(name), linkTarget: Buffer.from(target) }),
  fifo: (name: string | Buffer): TreeNode => ({ ...META, mode: 0o644, type: NodeType.Fifo, name: named(name) }),
  chardev: (name: string | Buffer, rdev: bigint): TreeNode => ({ ...META, mode: 0o644, type: NodeType.CharDevice, name: named(name), rdev }),
};

export class Crafter {
  readonly repo: Repository;
  private readonly store: LocalStore;
  private readonly packs: { writer: PackWriter; type: BlobType }[] = [];

  private constructor(repo: Repository, store: LocalStore) {
    this.repo = repo;
    this.store = store;
  }

  static async open(dir: string, passphrase = PASSWORD): Promise<Crafter> {
    const store = new LocalStore(dir);
    const repo = await Repository.open([store], passphrase);
    await repo.loadIndex();
    return new Crafter(repo, store);
  }

  private add(type: BlobType, plain: Buffer): Buffer {
    const id = blobId(this.repo.idKey, plain);
    let pack = this.packs.find((p) => p.type === type);
    if (!pack) this.packs.push((pack = { writer: new PackWriter(this.repo.keys.dataKey), type }));
    pack.writer.add(type, id, compress(plain), plain.length);
    return id;
  }

  /** A tree blob of `nodes` (sorted and encoded as a backup would). */
  tree(nodes: readonly TreeNode[]): Buffer {
    return this.add(BlobType.Tree, encodeTree(nodes));
  }

  /** A tree blob with any plaintext at all. */
  rawTree(plain: Buffer): Buffer {
    return this.add(BlobType.Tree, plain);
  }

  data(bytes: Buffer): Buffer {
    return this.add(BlobType.Data, bytes);
  }

  /** A blob stored exactly as given: any id, any framed payload, any claimed plaintext length. */
  rawBlob(type: BlobType, id: Buffer, framed: { flag: number; body: Uint8Array }, rawLength: number): Buffer {
    let pack = this.packs.find((p) => p.type === type);
    if (!pack) this.packs.push((pack = { writer: new PackWriter(this.repo.keys.dataKey), type }));
    pack.writer.add(type, id, framed, rawLength);
    return id;
  }

  /** An index file with any plaintext (framed as given). */
  async rawIndex(framed: Buffer): Promise<string> {
    const bytes = sealObject(this.repo.keys.dataKey, 'index', framed);
    const name = `index/${contentId(bytes)}`;
    await this.store.put(name, bytes);
    return name;
  }

  /** Writes the packs and their index, then a snapshot of `tree` (fields overridable); returns its id. */
  async snapshot(tree: Buffer, fields: Record<string, unknown> = {}): Promise<string> {
    const indexed: IndexedPack[] = [];
    for (const { writer } of this.packs.splice(0)) {
      const sealed = writer.seal();
      await this.store.put(packName(sealed.id), sealed.bytes);
      indexed.push({ id: Buffer.from(sealed.id, 'hex'), salt: sealed.salt, entries: sealed.entries });
    }
    if (indexed.length > 0) {
      const index = this.repo.sealIndex(indexed);
      await this.store.put(index.name, index.bytes);
    }
    const snapshot = {
      version: 1,
      // The root tree is the file system's root, as backups write it.
      layout: 'absolute',
      time: new Date().toISOString(),
      host: 'crafted',
      user: 'mallory',
      paths: ['/'],
      tags: [],
      tree: tree.toString('hex'),
      program: 'crafted',
      summary: { filesNew: 0, filesChanged: 0, filesUnmodified: 0, dirs: 0, totalFiles: 0, totalBytes: 0, dataBlobs: 0, treeBlobs: 0, bytesAdded: 0, warnings: 0, durationMs: 0 },
      ...fields,
    };
    return this.rawSnapshot(Buffer.from(JSON.stringify(snapshot)));
  }

  /** A snapshot object with any plaintext (compressed as a writer would, unless `framed` is given). */
  async rawSnapshot(plain: Buffer, framed = compressPayload(plain)): Promise<string> {
    const bytes = sealObject(this.repo.keys.dataKey, 'snapshot', framed);
    const id = contentId(bytes);
    await this.store.put(`snapshots/${id}`, bytes);
    return id;
  }

  close(): Promise<void> {
    return this.repo.close();
  }
}

/** A framed zstd payload (flag 1) that decompresses to `size` zero bytes: a few kilobytes on disk. */
export async function zstdBomb(size: number): Promise<Buffer> {
  const zstd = zlib.createZstdCompress({ params: { [zlib.constants.ZSTD_c_compressionLevel]: 1 } });
  const parts: Buffer[] = [Buffer.of(1)];
  zstd.on('data', (chunk: Buffer) => parts.push(chunk));
  const done = new Promise((resolve) => zstd.on('end', resolve));
  const block = Buffer.alloc(16 * 1024 * 1024);
  for (let left = size; left > 0; left -= block.length) {
    if (!zstd.write(block.subarray(0, Math.min(left, block.length)))) await new Promise((resolve) => zstd.once('drain', resolve));
  }
  zstd.end();
  await done;
  return Buffer.concat(parts);
}

// `copy`: snapshots from one repository into another that has its own keys and chunker secret. Nothing
// can be copied as it is: every file is read back from the source, cut again by the target's chunker,
// named by the target's id key and encrypted with its keys; only chunks and trees the target lacks are
// stored. The target is written like a backup writes it (writer marker, held-back doomed packs, fence
// before each snapshot); each copied snapshot names its original, so a second copy skips it.
import crypto from 'node:crypto';
import { Chunker } from '../format/chunker.ts';
import { blobId, ID_BYTES } from '../format/crypto.ts';
import { BlobType } from '../format/pack.ts';
import { contentIds, NodeType, type TreeNode } from '../format/tree.ts';
import type { Snapshot } from '../format/snapshot.ts';
import { RepositoryError, type Repository, type StoredSnapshot } from '../repo/repository.ts';
import { WriterSession } from '../repo/writer-markers.ts';
import { BlobWriter } from './blob-writer.ts';

export interface CopyOptions {
  /** Source snapshots to copy, oldest first. */
  readonly snapshots: readonly StoredSnapshot[];
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: CopyProgress) => void;
}

export interface CopyProgress {
  readonly snapshot: number;
  readonly snapshots: number;
  readonly bytesRead: number;
  readonly bytesAdded: number;
}

export interface CopyResult {
  readonly copied: readonly { readonly from: string; readonly to: string }[];
  /** Already in the target (a snapshot there names it as its original). */
  readonly skipped: readonly string[];
  readonly blobsAdded: number;
  readonly bytesAdded: number;
  readonly bytesRead: number;
}

/** Files met again (unchanged between snapshots) are not read again: their new chunk list is remembered. */
const FILE_CACHE = 100_000;

class Copier {
  private readonly source: Repository;
  private readonly target: Repository;
  private readonly writer: BlobWriter;
  private readonly chunker: Chunker;
  private readonly buffer: Buffer;
  private readonly trees = new Map<string, Buffer>();
  private readonly files = new Map<string, Buffer>();
  private readonly signal?: AbortSignal;
  bytesRead = 0;

  constructor(source: Repository, target: Repository, writer: BlobWriter, signal?: AbortSignal) {
    this.source = source;
    this.target = target;
    this.writer = writer;
    this.signal = signal;
    this.chunker = new Chunker(target.keys.chunkerSeed, target.config.chunker);
    this.buffer = Buffer.allocUnsafe(2 * target.config.chunker.max);
  }

  /** The file's chunk list in the target: its content read back and cut by the target's chunker. */
  private async content(node: TreeNode): Promise<Buffer> {
    const key = crypto.hash('sha256', node.content!, 'base64');
    const known = this.files.get(key);
    if (known) {
      for (let i = 0; i < known.length; i += ID_BYTES) if (!this.writer.has(known.subarray(i, i + ID_BYTES))) return this.chunk(node, key);
      return known;
    }
    return this.chunk(node, key);
  }

  private async chunk(node: TreeNode, key: string): Promise<Buffer> {
    const max = this.target.config.chunker.max;
    const ids: Buffer[] = [];
    let filled = 0;
    const cut = async (eof: boolean): Promise<void> => {
      let start = 0;
      while (filled - start >= max || (eof && filled > start)) {
        const end = this.chunker.nextCut(this.buffer, start, eof ? filled : start + max);
        const chunk = this.buffer.subarray(start, end);
        ids.push(await this.writer.store(BlobType.Data, chunk, blobId(this.target.idKey, chunk)));
        start = end;
      }
      this.buffer.copy(this.buffer, 0, start, filled);
      filled -= start;
    };
    for (const id of contentIds(node)) {
      this.signal?.throwIfAborted();
      const data = await this.source.readBlob(id, BlobType.Data);
      this.bytesRead += data.length;
      for (let at = 0; at < data.length; ) {
        const n = Math.min(data.length - at, this.buffer.length - filled);
        data.copy(this.buffer, filled, at, at + n);
        filled += n;
        at += n;
        if (filled >= max) await cut(false);
      }
    }
    await cut(true);
    const content = Buffer.concat(ids);
    if (this.files.size >= FILE_CACHE) this.files.delete(this.files.keys().next().value!);
    this.files.set(key, content);
    return content;
  }

  /** The tree's id in the target, after copying everything below it. */
  async tree(id: Buffer): Promise<Buffer> {
    const hex = id.toString('hex');
    const known = this.trees.get(hex);
    if (known && this.writer.has(known)) return known;
    const out: TreeNode[] = [];
    for (const node of await this.source.loadTree(id)) {
      if (node.type === NodeType.Dir && node.subtree) out.push({ ...node, subtree: await this.tree(node.subtree) });
      else if (node.type === NodeType.File && node.content && node.content.length > 0) out.push({ ...node, content: await this.content(node) });
      else out.push(node);
    }
    const copied = await this.writer.storeTree(out);
    this.trees.set(hex, copied);
    return copied;
  }
}

export async function copySnapshots(source: Repository, target: Repository, options: CopyOptions): Promise<CopyResult> {
  if (source.config.id === target.config.id) throw new RepositoryError('the source and the target are replicas of one repository: use coffer sync to copy between replicas');
  const reader = await WriterSession.start(source, { command: 'copy (reading)', onStoreFailure: 'skip', optional: true });
  const session = await WriterSession.start(target, { command: 'copy' });
  try {
    await source.loadIndex();
    await target.loadIndex({ holdBack: session.records });
    const already = new Set((await target.listSnapshots()).map((s) => s.snapshot.original).filter((id): id is string => id !== undefined));
    const writer = new BlobWriter(target);
    const copier = new Copier(source, target, writer, options.signal);
    const copied: { from: string; to: string }[] = [];
    const skipped: string[] = [];
    for (const [i, s] of options.snapshots.entries()) {
      options.signal?.throwIfAborted();
      if (already.has(s.id)) {
        skipped.push(s.id);
        continue;
      }
      const tree = await copier.tree(Buffer.from(s.snapshot.tree, 'hex'));
      await writer.finish();
      const { parent: _parent, ...rest } = s.snapshot;
      const snapshot: Snapshot = { ...rest, tree: tree.toString('hex'), original: s.id };
      const sealed = target.sealSnapshot(snapshot);
      for (const store of target.stores) {
        await session.fence(store);
        await store.put(sealed.name, sealed.bytes);
      }
      copied.push({ from: s.id, to: sealed.name.slice('snapshots/'.length) });
      options.onProgress?.({ snapshot: i + 1, snapshots: options.snapshots.length, bytesRead: copier.bytesRead, bytesAdded: writer.bytesAdded });
    }
    return { copied, skipped, blobsAdded: writer.blobsAdded, bytesAdded: writer.bytesAdded, bytesRead: copier.bytesRead };
  } finally {
    await session.end();
    await reader.end();
  }
}

// `repair snapshots`: for snapshots that need data the repository lost (a pack missing or damaged on
// every replica), new snapshots without it. A file with a lost chunk is truncated to the chunks before
// it and renamed NAME.truncated; a directory whose tree cannot be read is dropped; each is listed. The
// new snapshot carries the tag `repaired` and names its original; the originals are forgotten only
// when asked. Unchanged subtrees keep their ids, so the new snapshot costs only the changed trees.
import { BlobType } from '../format/pack.ts';
import { ID_BYTES } from '../format/crypto.ts';
import { compareNames, NodeType, type TreeNode } from '../format/tree.ts';
import type { Repository, StoredSnapshot } from '../repo/repository.ts';
import { WriterSession } from '../repo/writer-markers.ts';
import { packName } from '../store/store.ts';
import { BlobWriter } from './blob-writer.ts';
import { forgetSnapshots } from './forget.ts';

export interface RepairedPath {
  readonly path: string;
  readonly action: 'truncated' | 'dropped';
  readonly detail: string;
}

export interface SnapshotRepair {
  readonly original: StoredSnapshot;
  /** Id of the new snapshot (absent when nothing was damaged, in a dry run, or when nothing of it could be read). */
  readonly repaired?: string;
  readonly paths: readonly RepairedPath[];
  /** Not even its root tree can be read. */
  readonly lost: boolean;
}

export interface RepairSnapshotsOptions {
  readonly snapshots: readonly StoredSnapshot[];
  /** Forget the originals of the repaired (and the lost) snapshots. */
  readonly forget?: boolean;
  readonly dryRun?: boolean;
  /** Read every chunk (from any replica) instead of trusting the index and the packs' presence. */
  readonly readData?: boolean;
  readonly signal?: AbortSignal;
  readonly onSnapshot?: (done: number, total: number) => void;
}

export interface RepairSnapshotsResult {
  readonly repairs: readonly SnapshotRepair[];
  readonly forgotten: readonly string[];
}

interface RewrittenTree {
  readonly id: Buffer;
  /** Files and directories below, and the files' bytes, after the repair (for the snapshot's summary). */
  readonly files: number;
  readonly dirs: number;
  readonly bytes: number;
}

class Repairer {
  private readonly repo: Repository;
  private readonly writer: BlobWriter;
  private readonly presentPacks: Set<string>;
  private readonly options: RepairSnapshotsOptions;
  /** Verdicts per blob (hex): readable or not (cached: snapshots share most blobs). */
  private readonly verdicts = new Map<string, string | null>();
  /** Trees already rewritten: old id → new id and what is below it (or null: unreadable). */
  private readonly rewritten = new Map<string, RewrittenTree | null>();

  constructor(repo: Repository, writer: BlobWriter, presentPacks: Set<string>, options: RepairSnapshotsOptions) {
    this.repo = repo;
    this.writer = writer;
    this.presentPacks = presentPacks;
    this.options = options;
  }

  /** Why blob `id` cannot be read, or null when it can. */
  private async lost(id: Buffer, type: BlobType): Promise<string | null> {
    const hex = id.toString('hex');
    const known = this.verdicts.get(hex);
    if (known !== undefined) return known;
    let verdict: string | null = null;
    const loc = this.repo.locate(id);
    if (!loc) verdict = 'no index lists it';
    else if (!this.presentPacks.has(loc.packId)) verdict = `its pack ${packName(loc.packId)} is missing`;
    else if (this.options.readData) {
      try {
        await this.repo.readBlob(id, type);
      } catch (err) {
        verdict = (err as Error).message;
      }
    }
    this.verdicts.set(hex, verdict);
    return verdict;
  }

  /** The tree's new id (the same when nothing below it is damaged), or null when it cannot be read. */
  async tree(id: Buffer, path: string, found: RepairedPath[]): Promise<RewrittenTree | null> {
    this.options.signal?.throwIfAborted();
    const hex = id.toString('hex');
    if (this.rewritten.has(hex)) return this.rewritten.get(hex)!;
    let nodes: TreeNode[];
    try {
      nodes = await this.repo.loadTree(id);
    } catch {
      this.rewritten.set(hex, null);
      return null;
    }
    let changed = false;
    const out: TreeNode[] = [];
    let files = 0;
    let dirs = 0;
    let bytes = 0;
    for (const node of nodes) {
      const at = `${path}/${node.name.toString()}`;
      if (node.type === NodeType.Dir && node.subtree) {
        const below = await this.tree(node.subtree, at, found);
        if (!below) {
          found.push({ path: at, action: 'dropped', detail: 'its directory listing cannot be read' });
          changed = true;
          continue;
        }
        const same = below.id.equals(node.subtree);
        if (!same) changed = true;
        out.push(same ? node : { ...node, subtree: below.id });
        files += below.files;
        dirs += below.dirs + 1;
        bytes += below.bytes;
      } else if (node.type === NodeType.File) {
        const fixed = node.content ? await this.file(node, at, found) : node;
        if (fixed !== node) changed = true;
        out.push(fixed);
        files++;
        bytes += fixed.size;
      } else {
        out.push(node);
      }
    }
    let result = id;
    if (changed) {
      // A renamed file may take the place of an existing name: make names unique again.
      const names = new Set<string>();
      for (const [i, node] of out.entries()) {
        let name = node.name;
        for (let n = 1; names.has(name.toString('latin1')); n++) name = Buffer.concat([node.name, Buffer.from(`.${n}`)]);
        names.add(name.toString('latin1'));
        if (name !== node.name) out[i] = { ...node, name };
      }
      out.sort((a, b) => compareNames(a.name, b.name));
      result = this.options.dryRun ? id : await this.writer.storeTree(out);
    } else if (!this.options.dryRun) {
      await this.writer.keep(id, BlobType.Tree);
    }
    const tree = { id: result, files, dirs, bytes };
    this.rewritten.set(hex, tree);
    return tree;
  }

  private async file(node: TreeNode, path: string, found: RepairedPath[]): Promise<TreeNode> {
    const content = node.content!;
    let kept = 0;
    let size = 0;
    let reason: string | null = null;
    for (; kept < content.length / ID_BYTES; kept++) {
      const id = content.subarray(kept * ID_BYTES, (kept + 1) * ID_BYTES);
      reason = await this.lost(id, BlobType.Data);
      if (reason) break;
      size += this.repo.locate(id)!.rawLength;
    }
    if (!reason) {
      if (!this.options.dryRun) for (let i = 0; i < kept; i++) await this.writer.keep(content.subarray(i * ID_BYTES, (i + 1) * ID_BYTES), BlobType.Data);
      return node;
    }
    found.push({ path, action: 'truncated', detail: `chunk ${kept + 1} of ${content.length / ID_BYTES} is lost (${reason}); ${size} of ${node.size} bytes kept, renamed ${node.name.toString()}.truncated` });
    if (!this.options.dryRun) for (let i = 0; i < kept; i++) await this.writer.keep(content.subarray(i * ID_BYTES, (i + 1) * ID_BYTES), BlobType.Data);
    return { ...node, name: Buffer.concat([node.name, Buffer.from('.truncated')]), content: content.subarray(0, kept * ID_BYTES), size, sparse: false };
  }
}

export async function repairSnapshots(repo: Repository, options: RepairSnapshotsOptions): Promise<RepairSnapshotsResult> {
  const session = options.dryRun ? undefined : await WriterSession.start(repo, { command: 'repair snapshots' });
  try {
    await repo.loadIndex(session ? { holdBack: session.records } : {});
    const presentPacks = new Set<string>();
    for (const store of repo.stores) for await (const o of store.list('data')) presentPacks.add(o.name.slice(o.name.lastIndexOf('/') + 1));
    const writer = new BlobWriter(repo);
    const repairer = new Repairer(repo, writer, presentPacks, options);
    const planned: { original: StoredSnapshot; root: RewrittenTree | null; paths: RepairedPath[] }[] = [];
    for (const [i, s] of options.snapshots.entries()) {
      const paths: RepairedPath[] = [];
      const root = await repairer.tree(Buffer.from(s.snapshot.tree, 'hex'), '', paths);
      planned.push({ original: s, root, paths });
      options.onSnapshot?.(i + 1, options.snapshots.length);
    }
    if (!options.dryRun) await writer.finish();
    const repairs: SnapshotRepair[] = [];
    for (const { original, root, paths } of planned) {
      if (!root || paths.length === 0 || options.dryRun) {
        repairs.push({ original, paths, lost: root === null });
        continue;
      }
      const summary = { ...original.snapshot.summary, totalFiles: root.files, totalBytes: root.bytes, dirs: root.dirs };
      const snapshot = { ...original.snapshot, tree: root.id.toString('hex'), tags: [...new Set([...original.snapshot.tags, 'repaired'])].sort(), original: original.id, summary };
      const sealed = repo.sealSnapshot(snapshot);
      for (const store of repo.stores) {
        await session!.fence(store);
        await store.put(sealed.name, sealed.bytes);
      }
      repairs.push({ original, repaired: sealed.name.slice('snapshots/'.length), paths, lost: false });
    }
    let forgotten: string[] = [];
    if (options.forget && !options.dryRun) {
      const ids = repairs.filter((r) => r.repaired || r.lost).map((r) => r.original.id);
      if (ids.length > 0) forgotten = [...(await forgetSnapshots(repo, { ids, groupBy: [] })).removed];
    }
    return { repairs, forgotten };
  } finally {
    await session?.end();
  }
}

// `prune`: frees the space no snapshot needs, beside running backups, in two phases (docs/FORMAT.md 12.4).
// One run: bring the replicas in line, complete the deletion records whose writers are gone (phase 2),
// mark unused packs and repack mostly unused ones (phase 1) under a new record, and complete that record
// at once when no other writer is running. Per blob it holds only the index's typed arrays and a bit.
import { toHex } from '../../format/bytes.ts';
import { IndexEncoder, visitPacks, type IndexedPack } from '../../format/index-file.ts';
import { readPackHeader } from '../../repo/pack-reader.ts';
import { sealDeletionRecord, type DeletionRecords, type LoadedRecord } from '../../repo/deletion-records.ts';
import { IdTable } from '../../repo/id-table.ts';
import { whoAmI, type Repository } from '../../repo/repository.ts';
import { MARKER_TIMING, observeWriters, WriterSession, type MarkerTiming, type ObservedWriter } from '../../repo/writer-markers.ts';
import { TMP_DIR } from '../../store/layout.ts';
import { idOf, packName, type Store } from '../../store/store.ts';
import { DEFAULT_PACK_SIZE } from '../backup/backup.ts';
import { Destination } from '../destination.ts';
import { copyMissing, missingFrom, takeInventory, type Inventory } from '../replicas.ts';
import { BitSet } from './bits.ts';
import { IndexFiles, rewriteIndex, type PackFate } from './index-files.ts';
import { DamagedPackError, PackBuilder, repackPack } from './repack.ts';
import { BlobUsage, type MissingData } from './usage.ts';

export type UnusedLimit = { readonly kind: 'percent'; readonly percent: number } | { readonly kind: 'bytes'; readonly bytes: number } | { readonly kind: 'unlimited' };

export const DEFAULT_MAX_UNUSED: UnusedLimit = { kind: 'percent', percent: 5 };

export interface PruneOptions {
  /** Unused space tolerated after the run: a percentage of the used bytes, a size, or unlimited. */
  readonly maxUnused?: UnusedLimit;
  /** Bytes of packs read for repacking at most (default: no limit). */
  readonly maxRepackBytes?: number;
  /** Work out and report everything, change nothing (and write no marker). */
  readonly dryRun?: boolean;
  /** Snapshots to leave out as if forgotten (`forget --prune --dry-run` shows what the pair would free). */
  readonly ignoreSnapshots?: ReadonlySet<string>;
  readonly packSize?: number;
  readonly timing?: MarkerTiming;
  readonly signal?: AbortSignal;
  readonly onWarning?: (message: string) => void;
  /** Each stage as it starts, so that a display shows every one, however short. */
  readonly onStage?: (progress: PruneProgress) => void;
}

export type PruneStage = 'starting' | 'reconciling replicas' | 'loading index' | 'finding used data' | 'repacking' | 'writing index' | 'deleting' | 'cleaning up' | 'done';

export interface PruneProgress {
  readonly stage: PruneStage;
  readonly done: number;
  readonly total: number;
  readonly bytesDone: number;
  readonly bytesTotal: number;
  readonly elapsedMs: number;
}

export interface WaitingWriter {
  readonly location: string;
  readonly host: string;
  readonly pid: number;
  readonly command: string;
  readonly started: string;
  /** When its marker expires unless it heartbeats again (by this machine's clock). */
  readonly expires: string;
}

export interface Amount {
  readonly packs: number;
  readonly bytes: number;
}

export interface PruneResult {
  readonly dryRun: boolean;
  /** Packs (and their bytes) before the run, on one replica. */
  readonly before: Amount;
  readonly usedBytes: number;
  readonly unusedBytes: number;
  /** Deleted in this run (or that would be, with dryRun). */
  readonly deleted: Amount;
  /** Bytes freed: deleted minus what the repack wrote (estimated in a dry run). */
  readonly freedBytes: number;
  readonly repacked: Amount & { readonly blobs: number; readonly newPacks: number; readonly newBytes: number };
  /** Marked for deletion and waiting for other writers; `writers` says which. */
  readonly waiting: Amount & { readonly writers: readonly WaitingWriter[] };
  /** Doomed packs kept because a snapshot written meanwhile needs them. */
  readonly rescued: Amount;
  /** Unused bytes left after the run (what --max-unused tolerates). */
  readonly unusedAfter: number;
  readonly indexFiles: { readonly rewritten: number; readonly written: number };
  /** Packs adopted into the index (left unindexed by interrupted runs). */
  readonly adopted: number;
  /** Objects copied to, and forgotten snapshots or superseded index files removed from, lagging replicas. */
  readonly reconciled: { readonly copied: number; readonly removed: number };
  readonly cleanedUp: { readonly objects: number; readonly bytes: number };
  readonly records: { readonly completed: number; readonly written: number };
  /** Packs that could not be repacked (damaged): kept as they are. */
  readonly damaged: readonly string[];
  readonly unavailable: readonly string[];
}

/** Complete records are merged once there are this many. */
const MERGE_RECORDS_FROM = 8;

export class PruneError extends Error {
  override name = 'PruneError';
}

function describeMissing(missing: readonly MissingData[], count: number): string {
  const first = missing[0]!;
  return (
    `snapshot ${first.snapshot.slice(0, 8)} needs blob ${first.blob.slice(0, 16)} (${first.reason})` +
    (count > 1 ? ` and ${count - 1} more problems like it` : '') +
    '; prune changes nothing while the index is incomplete: run coffer check, then coffer repair index (or coffer repair snapshots)'
  );
}

function unusedAllowance(limit: UnusedLimit, usedBytes: number): number {
  if (limit.kind === 'unlimited') return Infinity;
  return limit.kind === 'bytes' ? limit.bytes : (usedBytes * limit.percent) / 100;
}

/** Pack number → bytes and blob marks, for the packs of the main index. */
interface PackUsage {
  readonly usedBytes: Float64Array;
  readonly usedBlobs: Uint32Array;
}

export class PruneRun {
  private readonly repo: Repository;
  private readonly options: PruneOptions;
  private readonly timing: MarkerTiming;
  private readonly packSize: number;
  private readonly started = performance.now();
  private stage: PruneStage = 'starting';
  private done = 0;
  private total = 0;
  private bytesDone = 0;
  private bytesTotal = 0;
  private session?: WriterSession;

  constructor(repo: Repository, options: PruneOptions = {}) {
    this.repo = repo;
    this.options = options;
    this.timing = options.timing ?? MARKER_TIMING;
    this.packSize = options.packSize ?? DEFAULT_PACK_SIZE;
  }

  progress(): PruneProgress {
    return { stage: this.stage, done: this.done, total: this.total, bytesDone: this.bytesDone, bytesTotal: this.bytesTotal, elapsedMs: performance.now() - this.started };
  }

  private enter(stage: PruneStage, total = 0, bytesTotal = 0): void {
    this.options.signal?.throwIfAborted();
    this.stage = stage;
    this.done = 0;
    this.total = total;
    this.bytesDone = 0;
    this.bytesTotal = bytesTotal;
    this.options.onStage?.(this.progress());
  }

  private warn(message: string): void {
    this.options.onWarning?.(message);
  }

  private get stores(): readonly Store[] {
    return this.repo.stores;
  }

  async run(): Promise<PruneResult> {
    const dryRun = this.options.dryRun ?? false;
    if (!dryRun) this.session = await WriterSession.start(this.repo, { command: 'prune', exclusive: true, timing: this.timing });
    try {
      return await this.prune(dryRun);
    } finally {
      this.stage = 'done';
      await this.session?.end();
    }
  }

  /** The other processes' markers on every store. */
  private async otherWriters(): Promise<ObservedWriter[]> {
    if (this.session) return this.session.others();
    const seen = await Promise.all(this.stores.map((s) => observeWriters(this.repo, s, Date.now(), this.timing)));
    return seen.flat();
  }

  private waitingWriter(w: ObservedWriter): WaitingWriter {
    const storageNow = this.session?.storageNow(w.store) ?? Date.now();
    const m = w.marker;
    return { location: w.store.location, host: m.host, pid: m.pid, command: m.command, started: m.started, expires: new Date(Date.now() + (w.expiresAt - storageNow)).toISOString() };
  }

  private async prune(dryRun: boolean): Promise<PruneResult> {
    const repo = this.repo;
    repo.reloadDeletionRecords();
    const records = this.session?.records ?? (await repo.deletionRecords());
    const reconciled = dryRun ? { copied: 0, removed: 0, inventories: await this.inventories() } : await this.reconcile(records);
    const inventories = reconciled.inventories;

    // Which records may be completed: every writer they name is gone (FORMAT.md 12.4, phase 2).
    const live = (await this.otherWriters()).filter((w) => w.liveness === 'live');
    const liveIds = new Set(live.map((w) => w.marker.writer));
    const isRipe = (r: LoadedRecord): boolean => r.record.writers.every((id) => !liveIds.has(toHex(id)));
    // Doomed packs, with a word saying whether every record naming them is ripe.
    const doomed = new IdTable(1);
    for (const r of records.records) {
      for (const id of r.record.packs) {
        const n = doomed.find(id);
        if (n < 0) doomed.add(id, [isRipe(r) ? 1 : 0]);
        else if (!isRipe(r)) doomed.setWord(n, 0, 0);
      }
    }
    const isDoomed = (id: Uint8Array): boolean => doomed.find(id) >= 0;

    // The snapshots before the index: a backup writes its index files before its snapshot, so every
    // snapshot listed here has its index files in the listing below. Listed after, a snapshot committed
    // between the two listings named blobs of an index file not loaded, and the prune refused to run.
    // Snapshots committed later are the two-phase rule's (FORMAT.md 12.4): their writers' markers.
    const snapshots = (await repo.listSnapshots()).filter((s) => !this.options.ignoreSnapshots?.has(s.id));

    // The index, doomed packs held back; then packs no index lists, from their headers.
    this.enter('loading index');
    const files = new IndexFiles();
    await files.loadNew(repo, isDoomed, (blobs) => (this.done += blobs));
    const packSizes = this.packSizes(inventories);
    const adopted = await this.adopt(packSizes, isDoomed);

    // What the snapshots need.
    const usage = new BlobUsage(repo);
    this.enter('finding used data', snapshots.length);
    for (const s of snapshots) {
      await usage.walk(s, this.options.signal);
      this.done++;
    }
    if (usage.missingCount > 0) throw new PruneError(describeMissing(usage.missing, usage.missingCount));
    // The repack reads whole packs of its own; the walk's tree packs would only add to the peak.
    repo.dropTreeCache();

    // Phase 2 for the ripe records: doomed packs nobody needs go; needed ones are rescued (kept, still doomed).
    const heldUsed = this.heldPackUsage(usage);
    const dropNow = new Set<string>();
    let rescued = { packs: 0, bytes: 0 };
    for (let n = 0; n < doomed.count; n++) {
      const id = toHex(doomed.id(n));
      if (!packSizes.has(id) && repo.heldBack.packNumber(doomed.id(n)) < 0) continue;
      if (heldUsed.has(id)) {
        rescued = { packs: rescued.packs + 1, bytes: rescued.bytes + (packSizes.get(id) ?? 0) };
        continue;
      }
      if (doomed.word(n, 0) === 1) dropNow.add(id);
    }

    // A rescued pack that a replica lacks (it was deleted there while another replica was away, and a
    // snapshot made there meanwhile needs it) goes back to it.
    if (!dryRun) await this.copyAcross(inventories, (name) => !(name.startsWith('data/') && heldUsed.has(idOf(name))));

    // Phase 1: how much of each pack is used.
    const packUsage = this.mainPackUsage(usage);
    const plan = this.plan(packUsage, packSizes);
    const mayComplete = records.records.filter((r) => isRipe(r) && r.record.packs.some((id) => dropNow.has(toHex(id))));
    const sizeOf = (ids: Iterable<string>): number => [...ids].reduce((sum, id) => sum + (packSizes.get(id) ?? 0), 0);
    const waitingOld = [...Array(doomed.count).keys()].map((n) => toHex(doomed.id(n))).filter((id) => packSizes.has(id) && !dropNow.has(id) && !heldUsed.has(id));
    const base = {
      dryRun,
      before: { packs: packSizes.size, bytes: sizeOf(packSizes.keys()) },
      usedBytes: plan.usedBytes,
      unusedBytes: plan.unusedBytes,
      rescued,
      adopted: adopted.length,
      unavailable: repo.unavailable.map((u) => u.store.location),
    };
    if (dryRun) {
      const freedNow = dropNow.size + plan.doom.length + plan.repack.length;
      return {
        ...base,
        deleted: { packs: freedNow, bytes: sizeOf(dropNow) + sizeOf(plan.doom) + sizeOf(plan.repack) },
        freedBytes: sizeOf(dropNow) + sizeOf(plan.doom) + sizeOf(plan.repack) - plan.repackUsedBytes,
        repacked: { packs: plan.repack.length, bytes: sizeOf(plan.repack), blobs: plan.repackBlobs, newPacks: 0, newBytes: plan.repackUsedBytes },
        waiting: { packs: waitingOld.length, bytes: sizeOf(waitingOld), writers: live.map((w) => this.waitingWriter(w)) },
        unusedAfter: plan.unusedAfter,
        indexFiles: { rewritten: 0, written: 0 },
        reconciled: { copied: 0, removed: 0 },
        cleanedUp: { objects: 0, bytes: 0 },
        records: { completed: mayComplete.length, written: 0 },
        damaged: [],
      };
    }

    // Repack: needed blobs of mostly unused packs into new packs, on every store.
    const damaged: string[] = [];
    // Packs no index file lists yet (adopted, and those the repack writes), encoded as index entries
    // rather than kept as an object per blob.
    const unlisted = new IndexEncoder();
    visitPacks(adopted, unlisted);
    const builder = new PackBuilder(repo, this.packSize, (sealed) => {
      visitPacks([{ id: Buffer.from(sealed.id, 'hex'), salt: sealed.salt, entries: sealed.entries }], unlisted);
      return this.upload(packName(sealed.id), sealed.bytes);
    });
    const relocated = new BitSet();
    const repacked: string[] = [];
    let repackBlobs = 0;
    this.enter('repacking', plan.repack.length, sizeOf(plan.repack));
    const kept = this.keptBlobs(usage, plan.repack);
    for (const [i, id] of plan.repack.entries()) {
      const blobs = kept.of(i);
      try {
        await repackPack(repo, repo.index.packNumber(Buffer.from(id, 'hex')), blobs, builder);
        for (const n of blobs) relocated.set(n);
        repackBlobs += blobs.length;
        repacked.push(id);
      } catch (err) {
        if (!(err instanceof DamagedPackError)) throw err;
        damaged.push(id);
        this.warn(`${err.message}; it is kept as it is (run coffer check --read-data)`);
      }
      this.done++;
      this.bytesDone += packSizes.get(id) ?? 0;
    }
    await builder.finish();

    // The record: what is doomed now, the index files it supersedes, who may not have seen it.
    const newlyDoomed = new Set([...plan.doom, ...repacked]);
    const fate = (id: Uint8Array): PackFate => {
      const hex = toHex(id);
      if (dropNow.has(hex)) return 'drop';
      if (newlyDoomed.has(hex)) return 'doom';
      return isDoomed(id) ? 'held' : 'keep';
    };
    this.enter('writing index');
    // Index files a record superseded but that are still found (a replica that was away, a run that stopped
    // half-way) are rewritten too: whatever they list that no other file does is kept.
    const superseded = (name: string): boolean => records.superseded.has(idOf(name));
    // Ctrl-C may stop the rewrite between files: the new files only repeat what the old ones list.
    const rewrite = await rewriteIndex(repo, files, fate, unlisted, this.stores, superseded, () => {
      this.done++;
      this.options.signal?.throwIfAborted();
    });
    files.markLoaded(rewrite.names);
    let written = 0;
    let record: { name: string; writers: Set<string> } | undefined;
    if (newlyDoomed.size > 0 || rewrite.superseded.length > 0) {
      record = await this.writeRecord([...newlyDoomed], rewrite.superseded);
      written++;
    }
    this.enter('deleting', rewrite.superseded.length + dropNow.size);
    await this.deleteEverywhere(rewrite.superseded);
    await this.deleteEverywhere([...dropNow].map(packName));
    let deleted = { packs: dropNow.size, bytes: sizeOf(dropNow) };

    // No other writer running: complete our own record now (new snapshots are walked first).
    let waiting = { packs: waitingOld.length, bytes: sizeOf(waitingOld), writers: [] as WaitingWriter[] };
    const stillLive = (await this.otherWriters()).filter((w) => w.liveness === 'live');
    const blocking = stillLive.filter((w) => record?.writers.has(w.marker.writer));
    let completed = mayComplete.length;
    if (newlyDoomed.size > 0 && blocking.length === 0) {
      const freed = await this.completeNow(newlyDoomed, rewrite.doomedFiles, files, isDoomed, usage, relocated, packSizes);
      deleted = { packs: deleted.packs + freed.deleted.size, bytes: deleted.bytes + sizeOf(freed.deleted) };
      rescued = { packs: rescued.packs + freed.rescued.size, bytes: rescued.bytes + sizeOf(freed.rescued) };
      written += freed.recordsWritten;
      completed++;
    } else if (newlyDoomed.size > 0) {
      waiting = { packs: waiting.packs + newlyDoomed.size, bytes: waiting.bytes + sizeOf(newlyDoomed), writers: blocking.map((w) => this.waitingWriter(w)) };
    }
    if (waiting.packs > 0 && waiting.writers.length === 0) waiting.writers = stillLive.map((w) => this.waitingWriter(w));

    // Last, snapshots a replica lacks (made while it was away from the others): everything they need is there now.
    const snapshotsCopied = await this.copyAcross(await this.inventories(), (name) => !name.startsWith('snapshots/') || records.forgets(name));
    this.enter('cleaning up');
    const cleanedUp = await this.cleanUp();
    written += await this.mergeCompleteRecords();
    return {
      ...base,
      rescued,
      deleted,
      freedBytes: deleted.bytes - builder.bytes,
      repacked: { packs: repacked.length, bytes: sizeOf(repacked), blobs: repackBlobs, newPacks: builder.packs, newBytes: builder.bytes },
      waiting,
      unusedAfter: plan.unusedAfter,
      indexFiles: { rewritten: rewrite.superseded.length, written: rewrite.written },
      reconciled: { copied: reconciled.copied + snapshotsCopied, removed: reconciled.removed },
      cleanedUp,
      records: { completed, written },
      damaged,
    };
  }

  private async inventories(): Promise<Map<Store, Inventory>> {
    return new Map(await Promise.all(this.stores.map(async (s) => [s, await takeInventory(s)] as const)));
  }

  /**
   * First half of bringing the replicas in line (FORMAT.md 12.6): each gets the packs, index files and
   * records another holds and it lacks — except what a record deleted (doomed packs, superseded index
   * files: a snapshot that needs a doomed pack gets it later, once the walk has rescued it) and except
   * snapshots, which come last (`copySnapshots`). Forgotten snapshots are removed wherever they are.
   */
  private async reconcile(records: DeletionRecords): Promise<{ copied: number; removed: number; inventories: Map<Store, Inventory> }> {
    this.enter('reconciling replicas');
    let inventories = await this.inventories();
    const copied = await this.copyAcross(inventories, (name) => name.startsWith('snapshots/') || records.deletes(name));
    if (copied > 0) inventories = await this.inventories();
    let removed = 0;
    for (const [store, inventory] of inventories) {
      for (const name of [...inventory.keys()]) {
        if (!records.forgets(name)) continue;
        await store.delete(name);
        inventory.delete(name);
        removed++;
      }
    }
    return { copied, removed, inventories };
  }

  /** Copies to each store what another holds and it lacks, but not what `skip` names. */
  private async copyAcross(inventories: Map<Store, Inventory>, skip: (name: string) => boolean): Promise<number> {
    if (inventories.size < 2) return 0;
    const replicas = [...inventories].map(([store, inventory]) => ({ store, inventory }));
    let copied = 0;
    await Promise.all(
      replicas.map(async (r) => {
        const missing = missingFrom(r.inventory, replicas.filter((o) => o !== r), skip);
        if (missing.length === 0) return;
        copied += missing.length;
        const destination = new Destination(r.store);
        await copyMissing(destination, missing, 0);
        if (destination.detached) throw destination.detached;
        for (const m of missing) r.inventory.set(m.name, m.size);
      }),
    );
    return copied;
  }

  /** Pack id → size, from every store's listing (replicas are in line by now). */
  private packSizes(inventories: Map<Store, Inventory>): Map<string, number> {
    const sizes = new Map<string, number>();
    for (const inventory of inventories.values()) {
      for (const [name, size] of inventory) if (name.startsWith('data/') && /^[0-9a-f]{64}$/.test(idOf(name))) sizes.set(idOf(name), size);
    }
    return sizes;
  }

  /** Packs on a store that no index lists: their headers are read so that they are judged like the rest. */
  private async adopt(packSizes: Map<string, number>, isDoomed: (id: Uint8Array) => boolean): Promise<IndexedPack[]> {
    const adopted: IndexedPack[] = [];
    for (const [id, size] of packSizes) {
      const raw = Buffer.from(id, 'hex');
      if (this.repo.index.hasPack(raw) || this.repo.heldBack.hasPack(raw)) continue;
      try {
        const pack = await this.readHeader(id, size);
        (isDoomed(raw) ? this.repo.heldBack : this.repo.index).addPack(pack);
        adopted.push(pack);
      } catch (err) {
        this.warn(`pack ${packName(id)} is in no index and its header cannot be read (${(err as Error).message}); it is left alone`);
      }
    }
    return adopted;
  }

  private async readHeader(id: string, size: number): Promise<IndexedPack> {
    let lastError: unknown;
    for (const store of this.stores) {
      try {
        return await readPackHeader(store, packName(id), size, this.repo.keys.dataKey);
      } catch (err) {
        lastError = err;
      }
    }
    throw lastError;
  }

  /** Held-back packs (doomed by records) that hold a blob a snapshot needs and has nowhere else. */
  private heldPackUsage(usage: BlobUsage): Set<string> {
    const held = this.repo.heldBack;
    const used = new Set<string>();
    for (let n = 0; n < held.blobCount; n++) if (usage.held.has(n)) used.add(toHex(held.packId(held.packOfBlob(n))));
    return used;
  }

  private mainPackUsage(usage: BlobUsage): PackUsage {
    const index = this.repo.index;
    const usedBytes = new Float64Array(index.packCount);
    const usedBlobs = new Uint32Array(index.packCount);
    for (let n = 0; n < index.blobCount; n++) {
      if (!usage.main.has(n)) continue;
      const p = index.packOfBlob(n);
      usedBytes[p]! += index.blobLength(n);
      usedBlobs[p]!++;
    }
    return { usedBytes, usedBlobs };
  }

  /**
   * The needed blob entries of each pack to repack (`packs[i]` → `of(i)`), from one pass over the
   * index, in one typed array: 4 bytes per blob kept.
   */
  private keptBlobs(usage: BlobUsage, packs: readonly string[]): { of(i: number): Int32Array } {
    const index = this.repo.index;
    const slot = new Int32Array(index.packCount).fill(-1);
    for (const [i, id] of packs.entries()) slot[index.packNumber(Buffer.from(id, 'hex'))] = i;
    const slotOf = (n: number): number => (usage.main.has(n) ? slot[index.packOfBlob(n)]! : -1);
    const start = new Uint32Array(packs.length + 1);
    for (let n = 0; n < index.blobCount; n++) if (slotOf(n) >= 0) start[slotOf(n) + 1]!++;
    for (let i = 0; i < packs.length; i++) start[i + 1]! += start[i]!;
    const blobs = new Int32Array(start[packs.length]!);
    const next = start.slice(0, packs.length);
    for (let n = 0; n < index.blobCount; n++) if (slotOf(n) >= 0) blobs[next[slotOf(n)]!++] = n;
    return { of: (i) => blobs.subarray(start[i]!, start[i + 1]!) };
  }

  /** Which packs to doom (nothing in them is needed) and which to repack (within the limits). */
  private plan(usage: PackUsage, packSizes: Map<string, number>) {
    const index = this.repo.index;
    const doom: string[] = [];
    const candidates: { id: string; size: number; unused: number; used: number; blobs: number }[] = [];
    let usedBytes = 0;
    let unusedBytes = 0;
    for (let p = 0; p < index.packCount; p++) {
      const id = toHex(index.packId(p));
      const size = packSizes.get(id);
      const used = usage.usedBytes[p]!;
      if (size === undefined) {
        // Listed by an index but on no replica: nothing needs it (else the walk would have failed
        // to read… data blobs are not read, so check here).
        if (used > 0) throw new PruneError(`pack ${packName(id)} holds data that snapshots need but is missing on every replica; run coffer check, then coffer repair snapshots`);
        doom.push(id);
        continue;
      }
      usedBytes += used;
      if (used === 0) {
        doom.push(id);
        unusedBytes += size;
        continue;
      }
      // Blob bytes no snapshot needs (the header and trailer are not unused data: repacking keeps them).
      const unused = Math.max(0, index.packBlobs(p).bytes - used);
      unusedBytes += unused;
      if (unused > 0) candidates.push({ id, size, unused, used, blobs: usage.usedBlobs[p]! });
    }
    // Most unused first, until what is left is within the allowance or the repack budget is spent.
    candidates.sort((a, b) => b.unused / b.size - a.unused / a.size || b.unused - a.unused);
    const allowance = unusedAllowance(this.options.maxUnused ?? DEFAULT_MAX_UNUSED, usedBytes);
    let unusedAfter = unusedBytes - doom.reduce((sum, id) => sum + (packSizes.get(id) ?? 0), 0);
    const budget = this.options.maxRepackBytes ?? Infinity;
    const repack: string[] = [];
    let repackBytes = 0;
    let repackUsedBytes = 0;
    let repackBlobs = 0;
    for (const c of candidates) {
      if (unusedAfter <= allowance) break;
      if (repackBytes + c.size > budget) continue;
      repack.push(c.id);
      repackBytes += c.size;
      repackUsedBytes += c.used;
      repackBlobs += c.blobs;
      unusedAfter -= c.unused;
    }
    return { doom, repack, usedBytes, unusedBytes, unusedAfter: Math.max(0, unusedAfter), repackUsedBytes, repackBlobs };
  }

  /** Puts an object on every store (prune's writes keep the replicas byte-identical). */
  private async upload(name: string, bytes: Uint8Array): Promise<void> {
    await Promise.all(this.stores.map((s) => s.put(name, bytes)));
  }

  private async deleteEverywhere(names: readonly string[]): Promise<void> {
    const queue = [...names];
    const worker = async (): Promise<void> => {
      for (let name = queue.shift(); name; name = queue.shift()) {
        this.options.signal?.throwIfAborted();
        await Promise.all(this.stores.map((s) => s.delete(name)));
        this.done++;
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
  }

  /**
   * Writes the record on every store, naming the live writers; lists the markers again and, while a
   * writer appears that the record does not name, writes it again with that writer (FORMAT.md 12.4 steps 3–4).
   */
  private async writeRecord(packs: string[], indexes: string[]): Promise<{ name: string; writers: Set<string> }> {
    const writers = new Set((await this.otherWriters()).filter((w) => w.liveness === 'live').map((w) => w.marker.writer));
    let previous: string | undefined;
    for (let round = 0; round < 5; round++) {
      const sealed = sealDeletionRecord(this.repo, {
        timeMs: Date.now(),
        host: whoAmI().host,
        snapshots: [],
        packs: packs.map((id) => Buffer.from(id, 'hex')),
        indexes: indexes.map((name) => Buffer.from(idOf(name), 'hex')),
        writers: [...writers].map((id) => Buffer.from(id, 'hex')),
      });
      await this.upload(sealed.name, sealed.bytes);
      if (previous) await Promise.all(this.stores.map((s) => s.delete(previous!)));
      previous = sealed.name;
      const now = (await this.otherWriters()).filter((w) => w.liveness === 'live').map((w) => w.marker.writer);
      const unnamed = now.filter((id) => !writers.has(id));
      if (unnamed.length === 0) {
        this.repo.reloadDeletionRecords();
        return { name: sealed.name, writers };
      }
      for (const id of unnamed) writers.add(id);
    }
    // Writers keep starting: undo the marking (they may only have re-stored a few blobs for nothing).
    await Promise.all(this.stores.map((s) => s.delete(previous!)));
    throw new PruneError('writers kept starting while prune marked data for deletion; nothing was marked, run prune again later');
  }

  /**
   * Phase 2 of this run's own record, when no writer it names is running: snapshots written since the
   * walk are walked too, and a doomed pack one of them needs is rescued; the doomed index files are
   * rewritten without the packs that go, then those packs are deleted.
   */
  private async completeNow(
    doomedNow: Set<string>,
    doomedFiles: readonly { name: string; packs: Buffer[] }[],
    files: IndexFiles,
    isDoomed: (id: Uint8Array) => boolean,
    usage: BlobUsage,
    relocated: BitSet,
    packSizes: Map<string, number>,
  ): Promise<{ deleted: Set<string>; rescued: Set<string>; recordsWritten: number }> {
    const repo = this.repo;
    // Index files other writers wrote since the first load (their packs are not doomed), then new snapshots.
    await files.loadNew(repo, (id) => isDoomed(id) || doomedNow.has(toHex(id)));
    const rescued = new Set<string>();
    for (const s of await repo.listSnapshots()) await usage.walk(s, this.options.signal);
    if (usage.missingCount > 0) throw new PruneError(describeMissing(usage.missing, usage.missingCount));
    // A needed blob whose first copy is in a pack doomed now and was not moved by the repack rescues it.
    const index = repo.index;
    for (let n = 0; n < index.blobCount; n++) {
      if (!usage.main.has(n) || relocated.has(n)) continue;
      const id = toHex(index.packId(index.packOfBlob(n)));
      if (doomedNow.has(id)) rescued.add(id);
    }
    const deleted = new Set([...doomedNow].filter((id) => !rescued.has(id)));
    if (deleted.size === 0) return { deleted, rescued, recordsWritten: 0 };
    // Doomed index files that list a pack going now: the rescued packs' entries move to a new file first.
    const touched = doomedFiles.filter((f) => f.packs.some((id) => deleted.has(toHex(id))));
    const remainder: IndexedPack[] = [];
    for (const f of touched) {
      if (f.packs.every((id) => deleted.has(toHex(id)))) continue;
      for (const pack of await repo.readIndexFile(f.name)) if (!deleted.has(toHex(pack.id))) remainder.push(pack);
    }
    if (remainder.length > 0) {
      const sealed = repo.sealIndex(remainder);
      await this.upload(sealed.name, sealed.bytes);
    }
    let recordsWritten = 0;
    if (touched.length > 0) {
      const sealed = sealDeletionRecord(repo, { timeMs: Date.now(), host: whoAmI().host, snapshots: [], packs: [], indexes: touched.map((f) => Buffer.from(idOf(f.name), 'hex')), writers: [] });
      await this.upload(sealed.name, sealed.bytes);
      recordsWritten++;
      await this.deleteEverywhere(touched.map((f) => f.name));
    }
    this.enter('deleting', deleted.size, [...deleted].reduce((sum, id) => sum + (packSizes.get(id) ?? 0), 0));
    await this.deleteEverywhere([...deleted].map(packName));
    return { deleted, rescued, recordsWritten };
  }

  /**
   * Every process reads every record when it starts, so records whose work is done everywhere (none of
   * their packs, index files or snapshots is left on any reachable replica) are merged into one: the
   * union of what they name, which loses nothing a late replica needs. Then the merged ones go.
   */
  private async mergeCompleteRecords(): Promise<number> {
    this.repo.reloadDeletionRecords();
    const records = await this.repo.deletionRecords();
    const present = new Set<string>();
    for (const inventory of (await this.inventories()).values()) for (const name of inventory.keys()) present.add(name);
    const complete = records.records.filter(({ record }) =>
      [...record.packs.map((id) => packName(toHex(id))), ...record.indexes.map((id) => `index/${toHex(id)}`), ...record.snapshots.map((id) => `snapshots/${toHex(id)}`)].every((name) => !present.has(name)),
    );
    if (complete.length < MERGE_RECORDS_FROM) return 0;
    const union = (pick: (r: LoadedRecord) => readonly Buffer[]): Buffer[] => [...new Map(complete.flatMap(pick).map((id) => [toHex(id), id])).values()];
    const merged = sealDeletionRecord(this.repo, {
      timeMs: Date.now(),
      host: whoAmI().host,
      snapshots: union((r) => r.record.snapshots),
      packs: union((r) => r.record.packs),
      indexes: union((r) => r.record.indexes),
      writers: [],
    });
    await this.upload(merged.name, merged.bytes);
    await this.deleteEverywhere(complete.map((r) => r.name).filter((name) => name !== merged.name));
    this.repo.reloadDeletionRecords();
    return 1;
  }

  /** tmp/ files and incomplete uploads that no live writer can still own (older than the marker expiry). */
  private async cleanUp(): Promise<{ objects: number; bytes: number }> {
    let objects = 0;
    let bytes = 0;
    for (const store of this.stores) {
      const before = (this.session?.storageNow(store) ?? Date.now()) - this.timing.expiryMs;
      for await (const o of store.list(TMP_DIR)) {
        if (o.modified === undefined || o.modified >= before) continue;
        await store.delete(o.name);
        objects++;
        bytes += o.size;
      }
      objects += (await store.removeIncomplete?.(before)) ?? 0;
    }
    return { objects, bytes };
  }
}

// Where sealed packs go: into the spool once, and into every destination's queue. Index files are
// checkpoints queued behind the packs they list; the snapshot is queued behind the index files. A
// destination that fails, or falls so far behind that the spool is full, is detached and the others
// carry on.
import { IndexEncoder } from '../../format/index-file.ts';
import { BlobType, type PackEntry } from '../../format/pack.ts';
import type { Repository } from '../../repo/repository.ts';
import { packName, type Store } from '../../store/store.ts';
import { DetachedError, type Destination, type PutOutcome } from '../destination.ts';
import type { PackSpool, SpoolFile } from '../spool.ts';

/** A sealed pack, in memory (trees) or in the spool file its chunk worker wrote it to (data). */
export type SealedPackData = {
  readonly id: string;
  readonly salt: Uint8Array;
  readonly entries: readonly PackEntry[];
} & ({ readonly bytes: Uint8Array } | { readonly file: SpoolFile });

export interface SinkOptions {
  /** Write a checkpoint index after this many new pack bytes... */
  readonly checkpointBytes: number;
  /** ...or after this long, whichever comes first. */
  readonly checkpointMs: number;
  /** Reading waits while even the fastest destination has more than this many bytes waiting. */
  readonly backlogLimit: number;
}

export const DEFAULT_SINK_OPTIONS: SinkOptions = {
  checkpointBytes: 256 * 1024 * 1024,
  checkpointMs: 15_000,
  backlogLimit: 48 * 1024 * 1024,
};

export interface CommitOutcome {
  readonly location: string;
  readonly committed: boolean;
  readonly error?: string;
}

export class NoDestinationLeftError extends Error {
  override name = 'NoDestinationLeftError';
  /** Why each destination left. */
  readonly causes: readonly Error[];

  constructor(message: string, causes: readonly Error[]) {
    super(message);
    this.causes = causes;
  }
}

export interface CommitHooks {
  /** Runs right before the snapshot is written to a store (the writer's fence); throwing keeps it out. */
  readonly beforeSnapshot?: (store: Store) => Promise<void>;
  /** The destination starts writing the snapshot: everything before it is durable there. */
  readonly committing?: (d: Destination) => void;
  readonly committed?: (d: Destination) => void;
}

export class PackSink {
  private readonly repo: Repository;
  readonly destinations: readonly Destination[];
  private readonly spool: PackSpool;
  private readonly options: SinkOptions;
  /**
   * The next checkpoint's index file, encoded as packs arrive: up to 256 MiB of small files' packs list
   * tens of thousands of blobs, and an object with its own id buffer for each cost ~10 MiB of heap.
   */
  private batch = new IndexEncoder();
  /** The packs it lists: the index file is queued behind them. */
  private batchPacks: string[] = [];
  private batchBytes = 0;
  private readonly indexNames: string[] = [];
  private lastCheckpoint = Date.now();
  /**
   * Hears when every destination has more than the backlog limit waiting (true), and when one no longer
   * has (false): the producer of packs holds back meanwhile (ChunkPool.holdPacks).
   */
  onBacklog?: (everyoneBehind: boolean) => void;
  private behind = false;
  bytesAdded = 0;
  packs = 0;
  dataBlobs = 0;
  treeBlobs = 0;

  constructor(repo: Repository, destinations: readonly Destination[], spool: PackSpool, options: SinkOptions = DEFAULT_SINK_OPTIONS) {
    this.repo = repo;
    this.destinations = destinations;
    this.spool = spool;
    this.options = options;
  }

  private live(): Destination[] {
    return this.destinations.filter((d) => !d.detached);
  }

  add(pack: SealedPackData, priority = 0): void {
    const { entries } = pack;
    const packId = Buffer.from(pack.id, 'hex');
    const { packNo, fresh } = this.repo.index.openPack(packId, pack.salt);
    this.batch.pack(packId, pack.salt, entries.length);
    for (const e of entries) {
      this.repo.index.addEntry(packNo, fresh, e.type, e.id, e.offset, e.length, e.rawLength);
      this.batch.blob(e.type, e.id, e.offset, e.length, e.rawLength);
      if (e.type === BlobType.Data) this.dataBlobs++;
      else this.treeBlobs++;
    }
    const name = packName(pack.id);
    this.batchPacks.push(name);
    // The spool owns the bytes (or file) from add() on, and may free them at once (written to disk, or no destination left).
    const content = 'bytes' in pack ? pack.bytes : pack.file;
    const size = 'bytes' in pack ? pack.bytes.length : pack.file.size;
    this.batchBytes += size;
    this.bytesAdded += size;
    this.packs++;
    const live = this.live();
    const holds = this.spool.add(content, live.length);
    // Data and tree blobs never share a pack.
    const hint = entries[0]?.type === BlobType.Tree ? { metadata: true } : undefined;
    live.forEach((d, i) => {
      const hold = holds[i]!;
      const done = (outcome: PutOutcome): void => {
        hold.release(outcome);
        // A backlog just changed. While every pack was added, all destinations may have been equally behind
        // (on a loaded machine even a local disk can stall that long): the full spool is settled now.
        if (this.spool.overLimit) this.detachFurthestBehind();
        this.noteBacklog();
      };
      // Failures detach the destination; they are reported by commit(), not by this promise.
      const source = hold.source();
      d.put({ name, size, load: () => hold.load(), ...(source ? { source } : {}), priority, done, hint }).catch(() => {});
    });
    if (this.spool.overLimit) this.detachFurthestBehind();
    this.noteBacklog();
    if (this.batchBytes >= this.options.checkpointBytes || Date.now() - this.lastCheckpoint >= this.options.checkpointMs) this.checkpoint();
  }

  /**
   * The spool is full: the destination with the biggest backlog leaves the run, but only if it is
   * really behind another one. While all are equally behind (none has stored its first packs yet) no one
   * is picked at random; the next pack, or the next pack stored, looks again.
   */
  private detachFurthestBehind(): void {
    const live = this.live();
    if (live.length < 2) return;
    const slowest = live.reduce((a, b) => (b.backlog > a.backlog ? b : a));
    const fastest = live.reduce((a, b) => (b.backlog < a.backlog ? b : a));
    if (slowest.backlog === fastest.backlog) return;
    slowest.detach(new DetachedError(`fell too far behind (the spool of ${Math.round(this.spool.onDisk / 2 ** 20)} MiB is full); bring it up to date with coffer sync`));
  }

  /** Queues an index file for the packs added since the last one, behind them on every destination. */
  checkpoint(): void {
    this.lastCheckpoint = Date.now();
    if (this.batchPacks.length === 0) return;
    const index = this.repo.sealIndex(this.batch);
    const after = this.batchPacks;
    this.batch = new IndexEncoder();
    this.batchPacks = [];
    this.batchBytes = 0;
    this.indexNames.push(index.name);
    for (const d of this.live()) d.put({ name: index.name, size: index.bytes.length, load: async () => index.bytes, after }).catch(() => {});
  }

  /** Waits while even the fastest destination is too far behind; fails when every destination is gone. */
  async backpressure(): Promise<void> {
    const live = this.live();
    if (live.length === 0) throw this.allGone();
    if (this.everyoneBehind(live)) await Promise.race(live.map((d) => d.drained(this.options.backlogLimit)));
  }

  private everyoneBehind(live: readonly Destination[]): boolean {
    return live.length > 0 && live.every((d) => d.backlog > this.options.backlogLimit);
  }

  /** Tells onBacklog when even the fastest destination falls too far behind, and when one catches up. */
  private noteBacklog(): void {
    const behind = this.everyoneBehind(this.live());
    if (behind === this.behind) return;
    this.behind = behind;
    this.onBacklog?.(behind);
  }

  private allGone(): NoDestinationLeftError {
    const reasons = this.destinations.map((d) => `${d.store.location}: ${d.detached?.message}`);
    const causes = this.destinations.flatMap((d) => (d.detached ? [d.detached] : []));
    return new NoDestinationLeftError(reasons.length === 1 ? (this.destinations[0]!.detached?.message ?? 'the destination failed') : `every destination failed (${reasons.join('; ')})`, causes);
  }

  /**
   * Final checkpoint, then the snapshot on each destination as soon as it holds everything before it
   * (and its catch-up copy is done); a fast destination commits while a slow one is still uploading.
   */
  async commit(snapshot: { name: string; bytes: Buffer }, catchUp: ReadonlyMap<Destination, Promise<void>>, hooks: CommitHooks = {}): Promise<CommitOutcome[]> {
    const { beforeSnapshot, committing, committed } = hooks;
    return this.finishEach(catchUp, async (d) => {
      // load() runs when the destination starts writing the snapshot: everything before it is durable there.
      const load = async (): Promise<Buffer> => {
        committing?.(d);
        await beforeSnapshot?.(d.store);
        return snapshot.bytes;
      };
      await d.put({ name: snapshot.name, size: snapshot.bytes.length, load, after: this.indexNames });
      d.markFinished();
      committed?.(d);
    });
  }

  /**
   * Final checkpoint, then waits until every destination holds everything added (and its catch-up copy
   * is done), without a snapshot: how a shard of a scaled-out backup ends (the merge writes the snapshot).
   */
  async settle(catchUp: ReadonlyMap<Destination, Promise<void>>): Promise<CommitOutcome[]> {
    return this.finishEach(catchUp, async (d) => {
      await d.idle();
      if (d.detached) throw d.detached;
      d.markFinished();
    });
  }

  /** Final checkpoint, then `finish` on each destination once its catch-up is done; a failure detaches only that one. */
  private async finishEach(catchUp: ReadonlyMap<Destination, Promise<void>>, finish: (d: Destination) => Promise<void>): Promise<CommitOutcome[]> {
    this.checkpoint();
    const outcomes = await Promise.all(
      this.destinations.map(async (d): Promise<CommitOutcome> => {
        try {
          await catchUp.get(d);
          await finish(d);
          return { location: d.store.location, committed: true };
        } catch (err) {
          d.detach(err as Error);
          return { location: d.store.location, committed: false, error: (err as Error).message };
        }
      }),
    );
    if (outcomes.every((o) => !o.committed)) throw this.allGone();
    return outcomes;
  }

  /** Ctrl-C or a fatal error: drop queued uploads and stop running ones (stores write atomically: no half object is left). */
  async abort(reason: Error): Promise<void> {
    for (const d of this.destinations) d.detach(reason);
    await Promise.all(this.destinations.map((d) => d.idle()));
  }
}

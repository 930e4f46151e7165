// Where sealed packs go: every destination's queue, plus the index batch that becomes the next
// checkpoint. A checkpoint is an index file queued behind the packs it lists, so a crash at any point
// leaves each destination with index files that only name durable packs.
import type { IndexedPack } from '../../format/index-file.ts';
import { BlobType, type PackEntry } from '../../format/pack.ts';
import type { Repository } from '../../repo/repository.ts';
import { packName } from '../../store/store.ts';
import type { Destination } from '../destination.ts';

export interface SealedPackData {
  readonly id: string;
  readonly salt: Uint8Array;
  readonly bytes: Uint8Array;
  readonly entries: readonly PackEntry[];
}

export interface SinkOptions {
  /** Write a checkpoint index after this many new pack bytes... */
  readonly checkpointBytes: number;
  /** ...or after this long, whichever comes first. */
  readonly checkpointMs: number;
  /** Stop taking new work while a destination has more than this many bytes waiting. */
  readonly backlogLimit: number;
}

export const DEFAULT_SINK_OPTIONS: SinkOptions = {
  checkpointBytes: 256 * 1024 * 1024,
  checkpointMs: 15_000,
  backlogLimit: 192 * 1024 * 1024,
};

export class PackSink {
  private readonly repo: Repository;
  readonly destinations: readonly Destination[];
  private readonly options: SinkOptions;
  private batch: IndexedPack[] = [];
  private batchBytes = 0;
  private lastCheckpoint = Date.now();
  bytesAdded = 0;
  packs = 0;
  dataBlobs = 0;
  treeBlobs = 0;

  constructor(repo: Repository, destinations: readonly Destination[], options: SinkOptions = DEFAULT_SINK_OPTIONS) {
    this.repo = repo;
    this.destinations = destinations;
    this.options = options;
  }

  add(pack: SealedPackData): void {
    // Entries from a worker arrive as plain Uint8Arrays (structured clone drops the Buffer prototype).
    const entries = pack.entries.map((e) => ({ ...e, id: Buffer.from(e.id.buffer, e.id.byteOffset, e.id.byteLength) }));
    const indexed: IndexedPack = { id: Buffer.from(pack.id, 'hex'), salt: Buffer.from(pack.salt), entries };
    this.repo.index.addPack(indexed);
    this.batch.push(indexed);
    this.batchBytes += pack.bytes.length;
    this.bytesAdded += pack.bytes.length;
    this.packs++;
    for (const e of entries) {
      if (e.type === BlobType.Data) this.dataBlobs++;
      else this.treeBlobs++;
    }
    // Failures are collected by Destination and raised by throwIfFailed, not by this promise.
    for (const d of this.destinations) d.put(packName(pack.id), pack.bytes).catch(() => {});
    if (this.batchBytes >= this.options.checkpointBytes || Date.now() - this.lastCheckpoint >= this.options.checkpointMs) this.checkpoint();
  }

  /** Queues an index file for the packs added since the last one, behind them on every destination. */
  checkpoint(): void {
    this.lastCheckpoint = Date.now();
    if (this.batch.length === 0) return;
    const index = this.repo.sealIndex(this.batch);
    this.batch = [];
    this.batchBytes = 0;
    for (const d of this.destinations) d.put(index.name, index.bytes, true).catch(() => {});
  }

  /** Waits while any destination is too far behind; raises a destination's failure. */
  async backpressure(): Promise<void> {
    this.throwIfFailed();
    for (const d of this.destinations) await d.drained(this.options.backlogLimit);
    this.throwIfFailed();
  }

  throwIfFailed(): void {
    for (const d of this.destinations) if (d.failed) throw d.failed;
  }

  /** Final checkpoint, then the snapshot behind it; resolves when every destination holds both. */
  async commit(snapshot: { name: string; bytes: Buffer }): Promise<void> {
    this.checkpoint();
    for (const d of this.destinations) d.put(snapshot.name, snapshot.bytes, true).catch(() => {});
    await Promise.all(this.destinations.map((d) => d.idle()));
    this.throwIfFailed();
    for (const d of this.destinations) d.markFinished();
  }

  /** Ctrl-C: drop queued uploads, let running ones finish so no half object is left behind. */
  async abort(reason: Error): Promise<void> {
    for (const d of this.destinations) d.cancelQueued(reason);
    await Promise.all(this.destinations.map((d) => d.idle()));
  }
}

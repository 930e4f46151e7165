// One destination of a backup or sync: its own queue, its own upload slots (as many as its measured
// throughput warrants), its own progress. Packs wait in priority order, aged so that nothing starves;
// an index file or snapshot waits until every object it depends on is durable here, which is how the
// write order packs → index → snapshot (invariant 2) holds on each destination separately.
import { isRemoteLocation } from '../store/locations.ts';
import type { ObjectHint, ObjectSource, PutOptions, Store } from '../store/store.ts';
import { ConcurrencyTuner } from './concurrency-tuner.ts';
import type { PauseGate } from './pause-gate.ts';

export type DestinationState = 'waiting' | 'uploading' | 'retrying' | 'done' | 'detached';

export interface DestinationStatus {
  readonly location: string;
  readonly state: DestinationState;
  readonly objectsDone: number;
  /** Accepted and not yet durable, the ones in flight included. */
  readonly objectsQueued: number;
  /** Being written right now. */
  readonly objectsInFlight: number;
  readonly bytesDone: number;
  readonly bytesQueued: number;
  /** Bytes per second over the last few seconds. */
  readonly speed: number;
  /** Seconds until the queued bytes are stored at the current speed. */
  readonly etaSeconds?: number;
  readonly concurrency: number;
  /** Why this destination left the run. */
  readonly error?: string;
}

/**
 * How a destination let go of an object: stored it; dropped it unsent (detached); or an upload of it
 * failed or was stopped, and a store's request may not have let go of the bytes yet (a cut socket
 * write, a multipart part in flight), so their memory must be left to the collector.
 */
export type PutOutcome = 'stored' | 'dropped' | 'failed';

export interface QueuedObject {
  readonly name: string;
  readonly size: number;
  /** The object's bytes; called when an upload slot is free, so big backlogs need not sit in memory. */
  readonly load: () => Promise<Uint8Array>;
  /** The object read where it lies, for a store that copies from it (Store.putFrom) instead of loading it whole. */
  readonly source?: ObjectSource;
  /** Higher goes first (packs only; waiting raises it, see AGING_MS). */
  readonly priority?: number;
  /** Names that must be durable here before this object is written (index files, snapshots). */
  readonly after?: readonly string[];
  /** Called once the destination no longer needs the object (see PutOutcome). */
  readonly done?: (outcome: PutOutcome) => void;
  /** Passed to the store (a tree pack is worth a copy in the local cache). */
  readonly hint?: ObjectHint;
}

interface Item extends QueuedObject {
  readonly enqueued: number;
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
}

/** Waiting this long counts as one priority level. */
const AGING_MS = 30_000;
const SPEED_WINDOW_MS = 5_000;

export class DetachedError extends Error {
  override name = 'DetachedError';
}

export class Destination {
  readonly store: Store;
  private readonly tuner: ConcurrencyTuner;
  /** Packs by priority level, each first in, first out. */
  private readonly byPriority = new Map<number, Item[]>();
  /** Objects that wait for others. */
  private readonly dependent: Item[] = [];
  private readonly durable = new Set<string>();
  private running = 0;
  /** Stops the uploads under way when the destination is detached. */
  private readonly stopUploads = new AbortController();
  private detachReason?: Error;
  private finished = false;
  private retrying = false;
  private objectsDone = 0;
  private bytesDone = 0;
  private bytesQueued = 0;
  private objectsQueued = 0;
  private readonly recent: { at: number; bytes: number }[] = [];
  private waiters: (() => void)[] = [];
  private readonly now: () => number;
  private readonly pause: PauseGate | undefined;

  /**
   * `concurrency`: uploads at once to start with (default: 4 over a network, 2 to a disk); the tuner
   * moves it. `pause`: while closed, uploads in flight finish and no new one starts.
   */
  constructor(store: Store, options: { concurrency?: number; maxConcurrency?: number; now?: () => number; pause?: PauseGate } = {}) {
    this.store = store;
    this.now = options.now ?? Date.now;
    this.pause = options.pause;
    this.pause?.onChange((paused) => {
      if (!paused) this.pump();
    });
    const initial = options.concurrency ?? (isRemoteLocation(store.location) ? 4 : 2);
    this.tuner = new ConcurrencyTuner({ initial, max: options.maxConcurrency ?? 16, now: this.now });
  }

  get detached(): Error | undefined {
    return this.detachReason;
  }

  /** Bytes accepted but not yet durable here. */
  get backlog(): number {
    return this.bytesQueued;
  }

  /** Queues an object; resolves when it is durable here, rejects if the destination is detached. */
  put(object: QueuedObject): Promise<void> {
    if (this.detachReason) {
      object.done?.('dropped');
      return Promise.reject(this.detachReason);
    }
    return new Promise((resolve, reject) => {
      const item: Item = { ...object, enqueued: this.now(), resolve, reject };
      if (object.after?.length) this.dependent.push(item);
      else {
        const level = object.priority ?? 0;
        let bucket = this.byPriority.get(level);
        if (!bucket) this.byPriority.set(level, (bucket = []));
        bucket.push(item);
      }
      this.bytesQueued += object.size;
      this.objectsQueued++;
      this.pump();
    });
  }

  /** The retry decorator below this destination is waiting to try again. */
  noteRetry(): void {
    this.retrying = true;
  }

  /**
   * Takes the destination out of the run: queued objects are dropped and running uploads stopped (a
   * store writes atomically, so a stopped upload leaves nothing under the object's name), so a
   * destination left behind as too slow does not keep uploading, nor keep the process alive.
   */
  detach(reason: Error): void {
    if (this.detachReason) return;
    this.detachReason = reason;
    this.stopUploads.abort(reason);
    for (const item of this.takeAllQueued()) {
      item.done?.('dropped');
      item.reject(reason);
    }
    this.wake();
  }

  private takeAllQueued(): Item[] {
    const items = [...this.dependent.splice(0), ...[...this.byPriority.values()].flatMap((b) => b.splice(0))];
    this.bytesQueued -= items.reduce((sum, i) => sum + i.size, 0);
    this.objectsQueued -= items.length;
    return items;
  }

  /** The next object to start: a ready dependent first (they are small and unblock commits), else the pack with the best aged priority. */
  private next(): Item | undefined {
    const ready = this.dependent.findIndex((i) => i.after!.every((name) => this.durable.has(name)));
    if (ready >= 0) return this.dependent.splice(ready, 1)[0];
    let best: Item[] | undefined;
    let bestScore = -Infinity;
    const now = this.now();
    for (const [level, bucket] of this.byPriority) {
      const head = bucket[0];
      if (!head) continue;
      const score = level + (now - head.enqueued) / AGING_MS;
      if (score > bestScore) {
        bestScore = score;
        best = bucket;
      }
    }
    return best?.shift();
  }

  private pump(): void {
    while (!this.detachReason && !this.pause?.paused && this.running < this.tuner.current) {
      const item = this.next();
      if (!item) {
        if (this.running < this.tuner.current) this.tuner.noteStarved();
        break;
      }
      this.run(item);
    }
    this.wake();
  }

  private run(item: Item): void {
    this.running++;
    this.write(item).then(
      () => {
        this.running--;
        this.retrying = false;
        this.durable.add(item.name);
        this.objectsDone++;
        this.bytesDone += item.size;
        this.bytesQueued -= item.size;
        this.objectsQueued--;
        this.recent.push({ at: this.now(), bytes: item.size });
        this.tuner.record(item.size);
        item.done?.('stored');
        item.resolve();
        this.pump();
      },
      (err: Error) => {
        this.running--;
        this.bytesQueued -= item.size;
        this.objectsQueued--;
        item.done?.('failed');
        item.reject(err);
        this.detach(err);
        this.pump();
      },
    );
  }

  private async write(item: Item): Promise<boolean> {
    const options: PutOptions = { ...item.hint, signal: this.stopUploads.signal };
    if (item.source && this.store.putFrom) return this.store.putFrom(item.name, item.source, options);
    return this.store.put(item.name, await item.load(), options);
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  private async until(condition: () => boolean): Promise<void> {
    while (!condition()) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  /** Resolves when nothing is queued or running (stored, or detached). */
  idle(): Promise<void> {
    return this.until(() => this.running === 0 && (this.objectsQueued === 0 || this.detachReason !== undefined));
  }

  /** Resolves when the backlog is at most `limit` bytes, or the destination was detached. */
  drained(limit: number): Promise<void> {
    return this.until(() => this.bytesQueued <= limit || this.detachReason !== undefined);
  }

  markFinished(): void {
    this.finished = true;
  }

  private speed(): number {
    const since = this.now() - SPEED_WINDOW_MS;
    while (this.recent.length > 0 && this.recent[0]!.at < since) this.recent.shift();
    return (this.recent.reduce((sum, r) => sum + r.bytes, 0) * 1000) / SPEED_WINDOW_MS;
  }

  status(): DestinationStatus {
    const speed = this.speed();
    const state: DestinationState = this.detachReason
      ? 'detached'
      : this.finished
        ? 'done'
        : this.retrying
          ? 'retrying'
          : this.running > 0
            ? 'uploading'
            : 'waiting';
    return {
      location: this.store.location,
      state,
      objectsDone: this.objectsDone,
      objectsQueued: this.objectsQueued,
      objectsInFlight: this.running,
      bytesDone: this.bytesDone,
      bytesQueued: this.bytesQueued,
      speed,
      ...(speed > 0 && this.bytesQueued > 0 ? { etaSeconds: this.bytesQueued / speed } : {}),
      concurrency: this.tuner.current,
      ...(this.detachReason ? { error: this.detachReason.message } : {}),
    };
  }
}

// One destination of a backup: its own upload queue and worker slots, so each replica goes at its own
// speed. Items run first-in first-out; a barrier item (an index file or a snapshot) starts only after
// every earlier item is durable, which is how the write order packs → index → snapshot (invariant 2)
// holds on each destination separately.
import type { Store } from '../store/store.ts';

export type DestinationState = 'waiting' | 'uploading' | 'done' | 'failed';

export interface DestinationStatus {
  readonly location: string;
  readonly state: DestinationState;
  readonly objectsDone: number;
  readonly objectsQueued: number;
  readonly bytesDone: number;
  readonly bytesQueued: number;
  /** Bytes per second over the run so far. */
  readonly speed: number;
  readonly error?: string;
}

interface Item {
  readonly name: string;
  readonly bytes: Uint8Array;
  readonly barrier: boolean;
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
}

export class Destination {
  readonly store: Store;
  private readonly queue: Item[] = [];
  private readonly concurrency: number;
  private running = 0;
  private failure?: Error;
  private objectsDone = 0;
  private bytesDone = 0;
  private bytesQueued = 0;
  private objectsQueued = 0;
  private readonly started = Date.now();
  private idleWaiters: (() => void)[] = [];
  private progressWaiters: (() => void)[] = [];
  private finished = false;

  constructor(store: Store, concurrency: number) {
    this.store = store;
    this.concurrency = concurrency;
  }

  get failed(): Error | undefined {
    return this.failure;
  }

  /** Bytes accepted but not yet durable here. */
  get backlog(): number {
    return this.bytesQueued;
  }

  /** Queues an object; resolves when it is durable on this destination. */
  put(name: string, bytes: Uint8Array, barrier = false): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.queue.push({ name, bytes, barrier, resolve, reject });
      this.bytesQueued += bytes.length;
      this.objectsQueued++;
      this.pump();
    });
  }

  private pump(): void {
    while (this.running < this.concurrency && this.queue.length > 0 && !this.failure) {
      const head = this.queue[0]!;
      if (head.barrier && this.running > 0) return;
      this.queue.shift();
      this.run(head);
      if (head.barrier) return;
    }
    if (this.running === 0 && (this.queue.length === 0 || this.failure)) this.wakeIdle();
  }

  private run(item: Item): void {
    this.running++;
    this.store.put(item.name, item.bytes).then(
      () => {
        this.running--;
        this.objectsDone++;
        this.bytesDone += item.bytes.length;
        this.bytesQueued -= item.bytes.length;
        this.objectsQueued--;
        item.resolve();
        this.wakeProgress();
        this.pump();
      },
      (err: Error) => {
        this.running--;
        this.fail(err);
        item.reject(err);
        this.wakeProgress();
        this.pump();
      },
    );
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    for (const item of this.queue.splice(0)) item.reject(err);
    this.bytesQueued = 0;
    this.objectsQueued = 0;
  }

  private wakeProgress(): void {
    const waiters = this.progressWaiters;
    this.progressWaiters = [];
    for (const wake of waiters) wake();
  }

  /** Resolves when the backlog is at most `limit` bytes (or the destination failed). */
  async drained(limit: number): Promise<void> {
    while (this.bytesQueued > limit && !this.failure) await new Promise<void>((resolve) => this.progressWaiters.push(resolve));
  }

  /** Drops everything not yet started (Ctrl-C): what is running finishes, so no half object is left. */
  cancelQueued(reason: Error): void {
    for (const item of this.queue.splice(0)) {
      this.bytesQueued -= item.bytes.length;
      this.objectsQueued--;
      item.reject(reason);
    }
    this.pump();
  }

  private wakeIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const wake of waiters) wake();
  }

  /** Resolves when nothing is queued or running (successfully or not). */
  idle(): Promise<void> {
    if (this.running === 0 && (this.queue.length === 0 || this.failure)) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  markFinished(): void {
    this.finished = true;
  }

  status(): DestinationStatus {
    const seconds = (Date.now() - this.started) / 1000;
    const state: DestinationState = this.failure ? 'failed' : this.finished ? 'done' : this.running > 0 ? 'uploading' : 'waiting';
    return {
      location: this.store.location,
      state,
      objectsDone: this.objectsDone,
      objectsQueued: this.objectsQueued,
      bytesDone: this.bytesDone,
      bytesQueued: this.bytesQueued,
      speed: seconds > 0 ? this.bytesDone / seconds : 0,
      ...(this.failure ? { error: this.failure.message } : {}),
    };
  }
}

// The main thread's side of the chunk workers: batches files (many small files per message), keeps
// every worker busy with at most two batches in flight, and applies back-pressure to the walker.
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import type { BlobIndex } from '../../repo/blob-index.ts';
import { siblingModule } from '../sibling-module.ts';
import type { FileResult, FromWorker, PackMessage, ToWorker, WorkerSetup } from './chunk-protocol.ts';

const BATCH_FILES = 64;
const BATCH_BYTES = 4 * 1024 * 1024;
const BATCHES_PER_WORKER = 2;

interface Batch {
  readonly paths: Uint8Array[];
  readonly resolvers: ((result: FileResult) => void)[];
  bytes: number;
  priority: number;
}

interface WorkerState {
  readonly worker: Worker;
  inFlight: Map<number, Batch>;
  flushed?: () => void;
}

export interface ChunkPoolEvents {
  /** A worker sealed a data pack. */
  onPack(pack: PackMessage): void;
  /** Bytes read from source files (progress). */
  onRead(bytes: number): void;
  /** A worker died: the backup cannot go on. */
  onFatal(err: Error): void;
}

function emptyBatch(): Batch {
  return { paths: [], resolvers: [], bytes: 0, priority: -Infinity };
}

export class ChunkPool {
  private readonly workers: WorkerState[];
  private pending = emptyBatch();
  private nextBatch = 0;
  private capacityWaiters: (() => void)[] = [];
  private readonly events: ChunkPoolEvents;
  private closing = false;

  constructor(setup: Omit<WorkerSetup, 'known'>, index: BlobIndex, events: ChunkPoolEvents, count = os.availableParallelism()) {
    this.events = events;
    const known = index.shareBlobs((share) => this.broadcast({ type: 'known', share }));
    this.workers = Array.from({ length: Math.max(1, count) }, () => {
      // A small young generation: workers churn through short-lived buffers, and a big one only grows memory.
      const worker = new Worker(siblingModule(import.meta.url, 'chunk-worker'), { workerData: { ...setup, known }, resourceLimits: { maxYoungGenerationSizeMb: 8 } });
      const state: WorkerState = { worker, inFlight: new Map() };
      worker.on('message', (m: FromWorker) => this.receive(state, m));
      worker.on('error', (err) => events.onFatal(err));
      worker.on('exit', (code) => {
        if (code !== 0 && !this.closing) events.onFatal(new Error(`chunk worker exited with code ${code}`));
      });
      return state;
    });
  }

  private broadcast(message: ToWorker): void {
    for (const w of this.workers) w.worker.postMessage(message);
  }

  private receive(state: WorkerState, message: FromWorker): void {
    switch (message.type) {
      case 'batch-done': {
        const batch = state.inFlight.get(message.batch)!;
        state.inFlight.delete(message.batch);
        message.results.forEach((result, i) => batch.resolvers[i]!(result));
        if (this.pending.paths.length > 0) this.dispatch(state);
        this.wakeWaiters();
        break;
      }
      case 'pack':
        this.events.onPack(message);
        break;
      case 'read':
        this.events.onRead(message.bytes);
        break;
      case 'flushed':
        state.flushed?.();
        break;
    }
  }

  private leastBusy(): WorkerState | undefined {
    let best: WorkerState | undefined;
    for (const w of this.workers) {
      if (w.inFlight.size < BATCHES_PER_WORKER && (!best || w.inFlight.size < best.inFlight.size)) best = w;
    }
    return best;
  }

  private dispatch(state: WorkerState): void {
    const batch = this.pending;
    this.pending = emptyBatch();
    const id = this.nextBatch++;
    state.inFlight.set(id, batch);
    state.worker.postMessage({ type: 'batch', batch: id, paths: batch.paths, priority: batch.priority } satisfies ToWorker);
  }

  private wakeWaiters(): void {
    const waiters = this.capacityWaiters;
    this.capacityWaiters = [];
    for (const wake of waiters) wake();
  }

  /**
   * Queues a file; the returned promise settles when it has been read and chunked. Awaiting `ready()`
   * before each submit keeps memory bounded.
   */
  submit(path: Buffer, size: number, priority = 0): Promise<FileResult> {
    const done = new Promise<FileResult>((resolve) => this.pending.resolvers.push(resolve));
    this.pending.paths.push(path);
    this.pending.bytes += size;
    this.pending.priority = Math.max(this.pending.priority, priority);
    const idle = this.workers.find((w) => w.inFlight.size === 0);
    if (idle) this.dispatch(idle);
    else if (this.pending.paths.length >= BATCH_FILES || this.pending.bytes >= BATCH_BYTES) {
      const free = this.leastBusy();
      if (free) this.dispatch(free);
    }
    return done;
  }

  /** Resolves when another file may be submitted without growing the queue past its bound. */
  async ready(): Promise<void> {
    while (this.pending.paths.length >= BATCH_FILES || this.pending.bytes >= BATCH_BYTES) {
      const free = this.leastBusy();
      if (free) this.dispatch(free);
      else await new Promise<void>((resolve) => this.capacityWaiters.push(resolve));
    }
  }

  /** Waits for every queued file, then has every worker seal its open pack. */
  async flush(): Promise<void> {
    while (this.pending.paths.length > 0 || this.workers.some((w) => w.inFlight.size > 0)) {
      const free = this.pending.paths.length > 0 ? this.leastBusy() : undefined;
      if (free) this.dispatch(free);
      else await new Promise<void>((resolve) => this.capacityWaiters.push(resolve));
    }
    await Promise.all(
      this.workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            w.flushed = resolve;
            w.worker.postMessage({ type: 'flush' } satisfies ToWorker);
          }),
      ),
    );
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.workers.map((w) => w.worker.terminate()));
  }
}

// The main thread's side of the chunk workers: batches files (many small files per message), keeps
// every worker busy with at most two batches in flight, and applies back-pressure to the walker.
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import type { BlobIndex } from '../../repo/blob-index.ts';
import type { IdSetShare } from '../../repo/id-table.ts';
import { siblingModule } from '../sibling-module.ts';
import { SpoolFile } from '../spool.ts';
import { CHUNK_THREAD_BYTES, threadLimit } from '../thread-budget.ts';
import { ID_BYTES } from '../../format/crypto.ts';
import type { SealedPackFile } from './pack-file.ts';
import { FileFlag, type BatchResults, type FileResult, type FromWorker, type PoolSetup, type SpoolFileOffer, type ToWorker, type WorkerSetup } from './chunk-protocol.ts';

const BATCH_FILES = 64;
const BATCH_BYTES = 4 * 1024 * 1024;
const BATCHES_PER_WORKER = 2;

interface Batch {
  readonly paths: Uint8Array[];
  readonly expected: bigint[];
  readonly callbacks: ((result: FileResult) => void)[];
  bytes: number;
  priority: number;
}

/** What the scan saw of a file, to tell whether it changed before it was read. */
export interface ScannedFile {
  readonly size: number;
  readonly mtimeNs: bigint;
  readonly ctimeNs: bigint;
}

interface WorkerState {
  readonly worker: Worker;
  inFlight: Map<number, Batch>;
  flushed?: () => void;
  /** Where the worker's empty spool files go (WorkerSetup.spoolFiles), and how many went. */
  readonly spoolPort: MessagePort;
  readonly spoolFilesPosted: Int32Array;
  /** Spool files the worker holds: offered and not yet back in a sealed pack. */
  readonly spoolFiles: Map<number, SpoolFile>;
}

/** Empty spool files offered to each worker ahead of its packs: it never waits for the main thread at a pack's start. */
const SPOOL_FILES_AHEAD = 2;

/** A data pack a worker sealed, in its spool file (the receiver owns the file), with the priority of its files. */
export type SealedDataPack = SealedPackFile & { readonly priority: number };

/** Streamed bytes go to a worker in blocks of this size... */
const STREAM_BLOCK = 1024 * 1024;
/** ...with at most this many bytes sent and not yet chunked: memory stays bounded for a stream of any size. */
const STREAM_WINDOW = 8 * 1024 * 1024;

/** Feeds one streamed source (stdin, a dump) to a chunk worker. */
export interface StreamWriter {
  /** Resolves when the bytes are on their way and there is room for more. */
  write(bytes: Uint8Array): Promise<void>;
  /** The stream's chunk ids and length, once every byte is chunked. */
  end(): Promise<{ content: Buffer; size: number }>;
  /** The producer failed: the worker drops what it holds of the stream. */
  abort(): void;
}

interface StreamState {
  readonly worker: WorkerState;
  unacked: number;
  wakeWriter?: () => void;
  done?: (result: { content: Buffer; size: number }) => void;
}

export interface ChunkPoolEvents {
  /** A worker sealed a data pack. */
  onPack(pack: SealedDataPack): void;
  /** Bytes read from source files (progress). */
  onRead(bytes: number): void;
  /** A worker died: the backup cannot go on. */
  onFatal(err: Error): void;
}

/** Hands each file of a batch its result. */
function deliver(results: BatchResults, callbacks: readonly ((result: FileResult) => void)[]): void {
  const ids = Buffer.from(results.ids.buffer, results.ids.byteOffset, results.ids.byteLength);
  const metas = new Map(results.metas.map((m) => [m.file, m.meta]));
  const errors = new Map(results.errors.map((e) => [e.file, e]));
  let offset = 0;
  callbacks.forEach((callback, file) => {
    const flags = results.flags[file]!;
    const error = errors.get(file);
    if (flags & FileFlag.failed || error) {
      callback({ ok: false, code: error?.code ?? 'EIO', message: error?.message ?? 'failed' });
      return;
    }
    const end = offset + results.chunkCounts[file]! * ID_BYTES;
    const meta = metas.get(file);
    callback({
      ok: true,
      content: ids.subarray(offset, end),
      size: results.sizes[file]!,
      sparse: (flags & FileFlag.sparse) !== 0,
      unstable: (flags & FileFlag.unstable) !== 0,
      ...(meta ? { meta } : {}),
    });
    offset = end;
  });
}

function emptyBatch(): Batch {
  return { paths: [], expected: [], callbacks: [], bytes: 0, priority: -Infinity };
}

export class ChunkPool {
  private readonly setup: PoolSetup;
  /** The most workers the pool starts. */
  private readonly limit: number;
  private readonly workers: WorkerState[] = [];
  /** The run's index as the workers see it (the latest share). */
  private known: IdSetShare;
  private pending = emptyBatch();
  private nextBatch = 0;
  private capacityWaiters: (() => void)[] = [];
  private events: ChunkPoolEvents;
  private closing = false;
  /** A worker died: the pool cannot serve another run. */
  private broken = false;
  private readonly streams = new Map<number, StreamState>();
  private nextStream = 0;
  /** 1 while the workers must not start another pack (holdPacks); shared with them. */
  private readonly held = new Int32Array(new SharedArrayBuffer(4));

  /**
   * Workers start as the work needs them (startWorker): a backup that reads no file (nothing changed
   * since its parent) starts none, and one with a few changed files one. Each costs ~14 MiB and
   * 0.1–0.3 CPU-s of module loading.
   */
  constructor(setup: PoolSetup, index: BlobIndex, events: ChunkPoolEvents, count = threadLimit(CHUNK_THREAD_BYTES)) {
    this.setup = setup;
    this.limit = Math.max(1, count);
    this.events = events;
    this.known = this.shareIndex(index);
  }

  /**
   * The index's blobs as workers see them; kept current so that a worker started late begins with what
   * the running ones were told.
   */
  private shareIndex(index: BlobIndex): IdSetShare {
    return index.shareBlobs((share) => {
      this.known = share;
      this.broadcast({ type: 'known', share });
    });
  }

  /** A new worker, or none once the pool is closing (a stopped run's walk may still be submitting). */
  private startWorker(): WorkerState | undefined {
    if (this.closing) return undefined;
    // A small young generation: workers churn through short-lived buffers, and a big one only grows memory.
    const { port1, port2 } = new MessageChannel();
    const spoolFilesPosted = new Int32Array(new SharedArrayBuffer(4));
    const worker = new Worker(siblingModule(import.meta.url, 'chunk-worker'), {
      workerData: { ...this.setup, known: this.known, held: this.held, spoolFiles: port2, spoolFilesPosted } satisfies WorkerSetup,
      transferList: [port2],
      resourceLimits: { maxYoungGenerationSizeMb: 8 },
    });
    const state: WorkerState = { worker, inFlight: new Map(), spoolPort: port1, spoolFilesPosted, spoolFiles: new Map() };
    for (let i = 0; i < SPOOL_FILES_AHEAD; i++) this.offerSpoolFile(state);
    worker.on('message', (m: FromWorker) => this.receive(state, m));
    worker.on('error', (err) => this.fail(err));
    worker.on('exit', (code) => {
      if (code !== 0 && !this.closing) this.fail(new Error(`exited with code ${code}`));
    });
    this.workers.push(state);
    return state;
  }

  /** Makes an empty spool file for the worker (or tells it why none could be made). */
  private offerSpoolFile(state: WorkerState): void {
    let offer: SpoolFileOffer;
    try {
      const file = SpoolFile.create(this.setup.spoolDir);
      state.spoolFiles.set(file.fd, file);
      offer = { fd: file.fd };
    } catch (err) {
      offer = { error: `cannot make a file in the spool directory ${this.setup.spoolDir}: ${(err as Error).message}` };
    }
    state.spoolPort.postMessage(offer);
    Atomics.add(state.spoolFilesPosted, 0, 1);
    Atomics.notify(state.spoolFilesPosted, 0);
  }

  /**
   * The worker for the pending batch: an idle one; else a new one if none runs yet, or if the batch is
   * full and the pool below its size (a second worker once the first has a full batch waiting); else,
   * for a full batch, the least busy with room. None: the batch waits.
   */
  private workerFor(full: boolean): WorkerState | undefined {
    const idle = this.workers.find((w) => w.inFlight.size === 0);
    if (idle) return idle;
    if (this.workers.length === 0 || (full && this.workers.length < this.limit)) return this.startWorker();
    return full ? this.leastBusy() : undefined;
  }

  private get batchFull(): boolean {
    return this.pending.paths.length >= BATCH_FILES || this.pending.bytes >= BATCH_BYTES;
  }

  private fail(err: Error): void {
    this.broken = true;
    this.events.onFatal(err);
  }

  /** Whether the pool can serve another run: no worker died, nothing is queued or in flight (after flush()). */
  get reusable(): boolean {
    return !this.broken && !this.closing && this.pending.paths.length === 0 && this.streams.size === 0 && this.workers.every((w) => w.inFlight.size === 0);
  }

  /**
   * While `held`, a worker that seals a pack waits before it starts the next one: every destination
   * is too far behind, and a file read on would only pile packs up in memory (or in the spool on disk).
   * The walk stops submitting files then too (PackSink.backpressure); this also stops a big file midway.
   */
  holdPacks(held: boolean): void {
    if (Atomics.exchange(this.held, 0, held ? 1 : 0) === 1 && !held) Atomics.notify(this.held, 0);
  }

  /** The run is over (flushed): the workers drop its index and what they sealed for it. */
  endRun(): void {
    this.holdPacks(false);
    this.broadcast({ type: 'run-over' });
  }

  /** Serves another run (a worker process's next shard), with its index and events; only after endRun(). */
  startRun(index: BlobIndex, events: ChunkPoolEvents): void {
    this.events = events;
    this.known = this.shareIndex(index);
    this.broadcast({ type: 'known', share: this.known });
  }

  private broadcast(message: ToWorker): void {
    for (const w of this.workers) w.worker.postMessage(message);
  }

  private receive(state: WorkerState, message: FromWorker): void {
    switch (message.type) {
      case 'batch-done': {
        const batch = state.inFlight.get(message.batch)!;
        state.inFlight.delete(message.batch);
        deliver(message.results, batch.callbacks);
        if (this.pending.paths.length > 0) this.dispatch(state);
        this.wakeWaiters();
        break;
      }
      case 'pack': {
        const file = state.spoolFiles.get(message.fd);
        if (!file) {
          this.fail(new Error(`sealed a pack in spool file ${message.fd}, which it was not given`));
          break;
        }
        state.spoolFiles.delete(message.fd);
        file.size = message.length;
        this.offerSpoolFile(state);
        this.events.onPack({ id: message.id, salt: message.salt, entries: message.entries, file, priority: message.priority });
        break;
      }
      case 'read':
        this.events.onRead(message.bytes);
        break;
      case 'flushed':
        state.flushed?.();
        break;
      case 'stream-ack': {
        const stream = this.streams.get(message.stream);
        if (!stream) break;
        stream.unacked -= message.bytes;
        stream.wakeWriter?.();
        break;
      }
      case 'stream-done': {
        const stream = this.streams.get(message.stream);
        this.streams.delete(message.stream);
        stream?.done?.({ content: Buffer.from(message.ids.buffer, message.ids.byteOffset, message.ids.byteLength), size: message.size });
        break;
      }
    }
  }

  /**
   * Starts a streamed source on an idle worker, else on a new one while the pool is below its size, else
   * on the least busy; its chunks go into that worker's packs.
   */
  openStream(priority: number): StreamWriter {
    const worker = this.workerFor(true) ?? this.leastBusy(Infinity);
    if (!worker) throw new Error('the chunk pool is closed');
    const id = this.nextStream++;
    const state: StreamState = { worker, unacked: 0 };
    this.streams.set(id, state);
    let block = new Uint8Array(STREAM_BLOCK);
    let fill = 0;
    const send = (end: boolean): void => {
      const bytes = fill === block.length ? block : block.slice(0, fill);
      state.unacked += fill;
      state.worker.worker.postMessage({ type: 'stream', stream: id, ...(fill > 0 ? { bytes } : {}), end, priority } satisfies ToWorker, fill > 0 ? [bytes.buffer as ArrayBuffer] : []);
      block = new Uint8Array(STREAM_BLOCK);
      fill = 0;
    };
    return {
      write: async (bytes) => {
        let offset = 0;
        while (offset < bytes.length) {
          const n = Math.min(bytes.length - offset, block.length - fill);
          block.set(bytes.subarray(offset, offset + n), fill);
          fill += n;
          offset += n;
          if (fill === block.length) send(false);
          while (state.unacked > STREAM_WINDOW) await new Promise<void>((resolve) => (state.wakeWriter = resolve));
        }
      },
      end: () =>
        new Promise((resolve) => {
          state.done = resolve;
          send(true);
        }),
      abort: () => {
        this.streams.delete(id);
        state.worker.worker.postMessage({ type: 'stream', stream: id, abort: true, priority } satisfies ToWorker);
      },
    };
  }

  /** The worker with the fewest batches in flight, among those with fewer than `room`. */
  private leastBusy(room = BATCHES_PER_WORKER): WorkerState | undefined {
    let best: WorkerState | undefined;
    for (const w of this.workers) {
      if (w.inFlight.size < room && (!best || w.inFlight.size < best.inFlight.size)) best = w;
    }
    return best;
  }

  private dispatch(state: WorkerState): void {
    const batch = this.pending;
    this.pending = emptyBatch();
    const id = this.nextBatch++;
    state.inFlight.set(id, batch);
    const expected = BigInt64Array.from(batch.expected);
    state.worker.postMessage({ type: 'batch', batch: id, paths: batch.paths, expected, priority: batch.priority } satisfies ToWorker, [expected.buffer]);
  }

  private wakeWaiters(): void {
    const waiters = this.capacityWaiters;
    this.capacityWaiters = [];
    for (const wake of waiters) wake();
  }

  /**
   * Queues a file; `done` is called when it has been read and chunked. Awaiting `ready()` before each
   * submit keeps memory bounded.
   */
  submit(path: Buffer, scanned: ScannedFile, priority: number, done: (result: FileResult) => void): void {
    this.pending.callbacks.push(done);
    this.pending.paths.push(path);
    this.pending.expected.push(BigInt(scanned.size), scanned.mtimeNs, scanned.ctimeNs);
    this.pending.bytes += scanned.size;
    this.pending.priority = Math.max(this.pending.priority, priority);
    const worker = this.workerFor(this.batchFull);
    if (worker) this.dispatch(worker);
  }

  /** Resolves when another file may be submitted without growing the queue past its bound. */
  async ready(): Promise<void> {
    while (this.batchFull) {
      const worker = this.workerFor(true);
      if (worker) this.dispatch(worker);
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
    this.holdPacks(false);
    await Promise.all(this.workers.map((w) => w.worker.terminate()));
    // The threads are gone: the files they held (empty, or a pack never sealed) are no one's.
    for (const w of this.workers) {
      for (const file of w.spoolFiles.values()) file.close();
      w.spoolFiles.clear();
      w.spoolPort.close();
    }
  }
}

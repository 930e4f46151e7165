// Messages between the backup's main thread and its chunk workers.
import type { MessagePort } from 'node:worker_threads';
import type { ChunkerParams } from '../../format/chunker.ts';
import type { PackEntry } from '../../format/pack.ts';
import type { NodeMeta } from '../../format/tree.ts';
import type { IdSetShare } from '../../repo/id-table.ts';

export interface WorkerSetup {
  readonly chunkerSeed: Uint8Array;
  readonly chunker: ChunkerParams;
  readonly idKey: Uint8Array;
  readonly dataKey: Uint8Array;
  readonly packSize: number;
  readonly zstdLevel: number;
  /** Where the worker's spool files are (its messages name it). */
  readonly spoolDir: string;
  readonly known: IdSetShare;
  /**
   * Empty spool files for the worker's data packs, made by the main thread: a descriptor a worker opened
   * is closed by Node when the worker exits, and could then be reused for another file while an upload
   * still reads the pack through it. The worker takes one synchronously (receiveMessageOnPort) as it
   * starts each pack: a message posted to its ordinary port would wait behind the batches in hand.
   */
  readonly spoolFiles: MessagePort;
  /** Files posted on spoolFiles so far, in shared memory: a worker with none waits on it. */
  readonly spoolFilesPosted: Int32Array;
  /** The run's pause gate in shared memory (1 while paused): a worker waits after sealing a pack. */
  readonly pause?: Int32Array;
  /**
   * The pool's hold in shared memory (1 while every destination is too far behind, ChunkPool.holdPacks):
   * a worker waits after sealing a pack, so even one huge file cannot pile packs up on the main thread.
   */
  readonly held: Int32Array;
}

/** What every worker of a pool starts with; the run's index, the pool's hold and the worker's spool port come on top. */
export type PoolSetup = Omit<WorkerSetup, 'known' | 'held' | 'spoolFiles' | 'spoolFilesPosted'>;

/** On a worker's spoolFiles port: an empty spool file, or why none could be made. */
export type SpoolFileOffer = { readonly fd: number } | { readonly error: string };

/** What the scan saw of a file: size, mtime and ctime (ns), three entries per file. */
export const EXPECTED_FIELDS = 3;

export type ToWorker =
  /**
   * `expected` holds what the scan saw of each file; a file read as expected needs no metadata back.
   * `priority`: the highest priority of the batch's files; the packs they go into carry it to the upload queues.
   */
  | { readonly type: 'batch'; readonly batch: number; readonly paths: Uint8Array[]; readonly expected: BigInt64Array; readonly priority: number }
  | { readonly type: 'flush' }
  | { readonly type: 'known'; readonly share: IdSetShare }
  /**
   * The run is over and every pack sealed (a pool kept for the process's next run: chunk-pools.ts): the
   * worker lets go of the run's index and forgets the ids of the packs it sealed for it. The next run's
   * own index alone says what is stored, and its 'known' comes before its first batch.
   */
  | { readonly type: 'run-over' }
  /**
   * A streamed source (stdin, a database dump): blocks of its bytes in order, chunked exactly as a file
   * with the same bytes would be. `end` cuts the last chunks and answers 'stream-done'; `abort` drops
   * the stream (its producer failed). Each block is answered with 'stream-ack' (flow control).
   */
  | { readonly type: 'stream'; readonly stream: number; readonly bytes?: Uint8Array; readonly end?: boolean; readonly abort?: boolean; readonly priority: number };

export const FileFlag = {
  failed: 1,
  sparse: 2,
  /** Kept changing while it was read; what was read last is stored. */
  unstable: 4,
  /** Not what the scan saw (changed or replaced before it was opened): its metadata comes along. */
  changed: 8,
} as const;

/**
 * A batch's results in a few arrays rather than an object per file: cloning thousands of small objects
 * with BigInt fields between threads cost more than reading small files.
 */
export interface BatchResults {
  readonly flags: Uint8Array;
  /** Bytes read from each file. */
  readonly sizes: Float64Array;
  readonly chunkCounts: Uint32Array;
  /** Every file's chunk ids, 32 bytes each, one file after another. */
  readonly ids: Uint8Array;
  readonly metas: { readonly file: number; readonly meta: NodeMeta }[];
  readonly errors: { readonly file: number; readonly code: string; readonly message: string }[];
}

/** One file's result, as the main thread uses it. */
export type FileResult =
  | {
      readonly ok: true;
      readonly content: Buffer;
      readonly size: number;
      readonly sparse: boolean;
      readonly unstable: boolean;
      /** Present when the file was not what the scan saw. */
      readonly meta?: NodeMeta;
    }
  | { readonly ok: false; readonly code: string; readonly message: string };

export interface PackMessage {
  readonly type: 'pack';
  readonly id: string;
  readonly salt: Uint8Array;
  /** The spool file the pack is in (one the main thread offered on spoolFiles), and its length. */
  readonly fd: number;
  readonly length: number;
  readonly entries: PackEntry[];
  readonly priority: number;
}

export type FromWorker =
  | { readonly type: 'batch-done'; readonly batch: number; readonly results: BatchResults }
  | PackMessage
  | { readonly type: 'read'; readonly bytes: number }
  | { readonly type: 'flushed' }
  | { readonly type: 'stream-ack'; readonly stream: number; readonly bytes: number }
  /** The stream's chunk ids, 32 bytes each, and its length. */
  | { readonly type: 'stream-done'; readonly stream: number; readonly ids: Uint8Array; readonly size: number };

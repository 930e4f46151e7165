// Messages between the backup's main thread and its chunk workers.
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
  readonly known: IdSetShare;
}

export type ToWorker =
  /** `priority`: the highest priority of the batch's files; the packs they go into carry it to the upload queues. */
  | { readonly type: 'batch'; readonly batch: number; readonly paths: Uint8Array[]; readonly priority: number }
  | { readonly type: 'flush' }
  | { readonly type: 'known'; readonly share: IdSetShare };

export type FileResult =
  | {
      readonly ok: true;
      /** Chunk ids, 32 bytes each. */
      readonly content: Uint8Array;
      /** Metadata from fstat at read time (what was actually read). */
      readonly meta: NodeMeta;
      readonly sparse: boolean;
      /** The file kept changing while it was read; what was read last is stored. */
      readonly unstable: boolean;
    }
  | { readonly ok: false; readonly code: string; readonly message: string };

export interface PackMessage {
  readonly type: 'pack';
  readonly id: string;
  readonly salt: Uint8Array;
  readonly bytes: ArrayBuffer;
  readonly entries: PackEntry[];
  readonly priority: number;
}

export type FromWorker =
  | { readonly type: 'batch-done'; readonly batch: number; readonly results: FileResult[] }
  | PackMessage
  | { readonly type: 'read'; readonly bytes: number }
  | { readonly type: 'flushed' };

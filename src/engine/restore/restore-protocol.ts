// Messages between a restore and its workers: a worker gets a piece of one pack and writes the blobs
// in it to every place in every file that needs them.
import type { BlobType } from '../../format/pack.ts';

export interface BlobTarget {
  readonly file: number;
  readonly position: number;
}

export interface BlobJob {
  readonly type: BlobType;
  readonly id: Uint8Array;
  /** Offset in the pack (the blob's nonce). */
  readonly offset: number;
  readonly length: number;
  readonly rawLength: number;
  readonly targets: BlobTarget[];
}

export interface PackJob {
  readonly type: 'pack';
  readonly job: number;
  readonly packName: string;
  readonly salt: Uint8Array;
  /** Bytes of the pack from `base` on. */
  readonly bytes: ArrayBuffer;
  readonly base: number;
  readonly blobs: BlobJob[];
  /**
   * The files this job writes to, by file number: descriptors the restore holds open until every job
   * writing to the file is done; sparse files get their zero runs skipped.
   */
  readonly files: Record<number, { fd: number; sparse: boolean }>;
}

export interface RestoreWorkerSetup {
  readonly dataKey: Uint8Array;
  readonly idKey: Uint8Array;
}

export interface JobDone {
  readonly type: 'done';
  readonly job: number;
  readonly bytesWritten: number;
  /** Blobs that did not decrypt or verify (indexes into the job's blobs), to be fetched again elsewhere. */
  readonly failed: { readonly blob: number; readonly message: string }[];
  /** Files that could not be written. */
  readonly fileErrors: { readonly file: number; readonly message: string }[];
}

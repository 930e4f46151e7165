// Snapshot objects: the root of one backup. JSON inside the encrypted object envelope.
import { FormatError } from './bytes.ts';

export interface SnapshotSummary {
  readonly filesNew: number;
  readonly filesChanged: number;
  readonly filesUnmodified: number;
  readonly dirs: number;
  readonly totalFiles: number;
  readonly totalBytes: number;
  readonly dataBlobs: number;
  readonly treeBlobs: number;
  /** Bytes of new packs written (after compression and encryption). */
  readonly bytesAdded: number;
  readonly warnings: number;
  readonly durationMs: number;
}

/**
 * How the root tree holds the sources. `absolute` (written since 0.2): the root tree is the file
 * system's root and each source sits at its full path (/home/ann/documents is home → ann → documents).
 * Absent (written by 0.1.0): the root tree holds one node per source, named by its last component.
 */
export type SnapshotLayout = 'absolute';

export interface Snapshot {
  readonly version: 1;
  readonly layout?: SnapshotLayout;
  /** ISO 8601 UTC time the backup started. */
  readonly time: string;
  readonly host: string;
  readonly user: string;
  /** Absolute source paths, sorted. */
  readonly paths: string[];
  readonly tags: string[];
  /** Hex id of the root tree blob. */
  readonly tree: string;
  /** Hex id of the snapshot this one was compared against, if any. */
  readonly parent?: string;
  /**
   * Hex id of the snapshot this one replaces (`coffer tag` rewrites a snapshot: it writes the new one,
   * then deletes the old one). While both exist, the old one is hidden and the next `tag` deletes it.
   */
  readonly replaces?: string;
  readonly program: string;
  readonly summary: SnapshotSummary;
}

export function encodeSnapshot(snapshot: Snapshot): Buffer {
  return Buffer.from(JSON.stringify(snapshot));
}

export function decodeSnapshot(bytes: Uint8Array, what: string): Snapshot {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new FormatError(`${what} is not valid JSON`);
  }
  const s = value as Snapshot;
  if (typeof s !== 'object' || s === null || s.version !== 1 || typeof s.time !== 'string' || !/^[0-9a-f]{64}$/.test(s.tree) || !Array.isArray(s.paths)) {
    throw new FormatError(`${what} is not a version 1 snapshot`);
  }
  if (s.layout !== undefined && s.layout !== 'absolute') throw new FormatError(`${what} has a root layout (${JSON.stringify(s.layout)}) this version does not know; upgrade Coffer`);
  return s;
}

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

/**
 * A part of the sources that a partial snapshot lacks: a whole source (`path`), or the entries of a split
 * directory (`dir`) with names from `from` (inclusive) to `to` (exclusive), either end open when absent.
 * FORMAT.md, section 11.
 */
export interface MissingPart {
  readonly path?: string;
  readonly dir?: string;
  readonly from?: string;
  readonly to?: string;
}

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
  /** The snapshot this one was made from by `repair snapshots` or `copy` (in its own repository). */
  readonly original?: string;
  /**
   * Set on a scaled-out backup whose plan allows partial snapshots and some of whose shards failed: the
   * parts of the sources it does not hold. Absent on a complete snapshot.
   */
  readonly partial?: { readonly missing: readonly MissingPart[] };
}

export function encodeSnapshot(snapshot: Snapshot): Buffer {
  return Buffer.from(JSON.stringify(snapshot));
}

const SUMMARY_FIELDS = ['filesNew', 'filesChanged', 'filesUnmodified', 'dirs', 'totalFiles', 'totalBytes', 'dataBlobs', 'treeBlobs', 'bytesAdded', 'warnings', 'durationMs'] as const;
const HEX_ID = /^[0-9a-f]{64}$/;
/** Host, user, program, tags and paths are short; a snapshot holds at most this many paths and tags. */
const MAX_TEXT = 4096;
const MAX_ITEMS = 100_000;

function isText(value: unknown): value is string {
  return typeof value === 'string' && value.length <= MAX_TEXT;
}

function isTextList(value: unknown): value is string[] {
  return Array.isArray(value) && value.length <= MAX_ITEMS && value.every(isText);
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/**
 * A snapshot, every field checked: one written by someone else must not make a command that lists or
 * uses it fail later on a missing or mistyped field. Unknown fields are kept (later versions may add some).
 */
export function decodeSnapshot(bytes: Uint8Array, what: string): Snapshot {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new FormatError(`${what} is not valid JSON`);
  }
  const s = value as Record<string, unknown> | null;
  if (typeof s !== 'object' || s === null || Array.isArray(s) || s.version !== 1) throw new FormatError(`${what} is not a version 1 snapshot`);
  if (s.layout !== undefined && s.layout !== 'absolute') throw new FormatError(`${what} has a root layout (${JSON.stringify(s.layout).slice(0, 40)}) this version does not know; upgrade Coffer`);
  const bad = (field: string): never => {
    throw new FormatError(`${what} is damaged: its ${field} is missing or malformed`);
  };
  if (!isText(s.time) || Number.isNaN(Date.parse(s.time))) bad('time');
  for (const field of ['host', 'user', 'program'] as const) if (!isText(s[field])) bad(field);
  if (!isTextList(s.paths)) bad('paths');
  if (!isTextList(s.tags)) bad('tags');
  if (typeof s.tree !== 'string' || !HEX_ID.test(s.tree)) bad('tree');
  for (const field of ['parent', 'replaces', 'original'] as const) if (s[field] !== undefined && (typeof s[field] !== 'string' || !HEX_ID.test(s[field]))) bad(field);
  const summary = s.summary as Record<string, unknown> | null | undefined;
  if (typeof summary !== 'object' || summary === null || Array.isArray(summary)) bad('summary');
  for (const field of SUMMARY_FIELDS) if (!isCount(summary![field])) bad(`summary.${field}`);
  if (s.partial !== undefined && !isPartial(s.partial)) bad('partial');
  return s as unknown as Snapshot;
}

function isPartial(partial: unknown): boolean {
  const missing = (partial as { missing?: unknown } | null)?.missing;
  if (typeof partial !== 'object' || !Array.isArray(missing) || missing.length === 0 || missing.length > MAX_ITEMS) return false;
  const optional = (v: unknown): boolean => v === undefined || isText(v);
  return missing.every((m: Partial<Record<keyof MissingPart, unknown>> | null) => {
    if (typeof m !== 'object' || m === null || Array.isArray(m)) return false;
    if (m.path !== undefined) return isText(m.path) && m.dir === undefined && m.from === undefined && m.to === undefined;
    return isText(m.dir) && optional(m.from) && optional(m.to);
  });
}

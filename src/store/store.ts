// The storage interface every backend implements (local disk, S3, SFTP) and decorators wrap (retry,
// throttle, fault injection). Objects are immutable: `put` never overwrites (invariant 1). Every name
// that crosses this interface is an object name of layout.ts: a backend refuses any other name it is
// given, and reports and skips any other name it finds when listing.

export interface ObjectInfo {
  /** Name relative to the repository root, with '/' separators: 'data/ab/ab12…', 'index/…', 'config'. */
  readonly name: string;
  readonly size: number;
  /**
   * When the object was written, by the storage's clock (ms since 1970): file mtime, S3 LastModified,
   * SFTP mtime. Ages compared on one store need no agreement between host clocks (FORMAT.md 12.1).
   * Absent when a backend cannot say.
   */
  readonly modified?: number;
}

export interface ByteRange {
  readonly offset: number;
  readonly length: number;
}

/**
 * What the caller knows of an object that a decorator may act on; backends ignore it. `metadata`: a
 * pack of directory trees, which later commands read again (the local cache keeps a copy).
 */
export interface ObjectHint {
  readonly metadata?: boolean;
}

export interface PutOptions extends ObjectHint {
  /**
   * Stops the write (a detached destination's uploads): the call rejects with an AbortError and
   * nothing is left under the object's name. Local and SFTP stores write a temporary file and link or
   * rename it, S3 keeps nothing of a cut-off PUT or an uncompleted multipart upload: they stop at once.
   * A REST store stops only before it sends (rclone serve restic writes in place).
   */
  readonly signal?: AbortSignal;
}

/**
 * An object's bytes, read on demand where they lie (a pack in a spool file): a store that takes it
 * copies them in pieces, and no copy of the whole object is made in memory.
 */
export interface ObjectSource {
  readonly size: number;
  /** Reads into `into` from `position`; how many bytes were read (0 past the end). */
  read(into: Uint8Array, position: number): Promise<number>;
}

/** Either signal, or none. */
export function eitherSignal(a: AbortSignal | undefined, b: AbortSignal | undefined): AbortSignal | undefined {
  return a && b ? AbortSignal.any([a, b]) : (a ?? b);
}

export interface Store {
  /** Where the store is, for messages; never holds a secret. */
  readonly location: string;
  /** Writes the object atomically unless it exists. Returns false when an object of that name and size was already there. */
  put(name: string, data: Uint8Array, options?: PutOptions): Promise<boolean>;
  /**
   * `put`, from a source read piece by piece. Only a store that writes a file as it reads (local) has
   * it: the others take the bytes whole (a request body, a retry from the start), and the caller
   * loads them. Decorators do not pass it on, so throttling and retries still see every byte.
   */
  putFrom?(name: string, source: ObjectSource, options?: PutOptions): Promise<boolean>;
  /** Whole object, or `range` of it (a range reaching past the end is an error). */
  get(name: string, range?: ByteRange, hint?: ObjectHint): Promise<Buffer>;
  stat(name: string): Promise<ObjectInfo | undefined>;
  /**
   * Every object under `dir` (a folder of layout.ts: 'keys', 'data', 'index', 'snapshots', 'tmp'), in
   * no particular order. Entries that are not objects of the folder are skipped (and reported to the
   * backend's onForeign).
   */
  list(dir: string): AsyncIterable<ObjectInfo>;
  /** Removes an object; removing a missing object is not an error. */
  delete(name: string): Promise<void>;
  /**
   * Aborts uploads that were started before `before` (storage time) and never finished, which the
   * store keeps out of sight of `list` (S3 multipart uploads); returns how many. Stores whose unfinished
   * writes are ordinary files under tmp/ (local, SFTP) have nothing here: prune lists and deletes those.
   */
  removeIncomplete?(before: number): Promise<number>;
  /**
   * For a store that keeps local copies of packs (the cache of a remote repository): drops the copies
   * of packs `isIndexed` says no index lists any more (pruned by another machine). Decorators pass it on.
   */
  pruneCopies?(isIndexed: (packName: string) => boolean): Promise<void>;
  close(): Promise<void>;
}

export type StoreErrorKind =
  /** The object does not exist. */
  | 'not-found'
  /** An object of that name exists with different content: the store is damaged. */
  | 'conflict'
  /** Disk or quota full. */
  | 'no-space'
  /** Credentials or permissions refuse the operation: retrying will not help. */
  | 'denied'
  /** A network or server hiccup that a retry may fix. */
  | 'transient'
  /** Anything else that will not go away by itself. */
  | 'permanent';

export class StoreError extends Error {
  override name = 'StoreError';
  readonly kind: StoreErrorKind;

  constructor(kind: StoreErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.kind = kind;
  }
}

/**
 * `put`'s answer when an object of that name is already there: nothing to do if it has the expected
 * size (names are content hashes, so same name and size means same bytes), else the store is damaged.
 */
export function alreadyStored(action: string, existingSize: number, size: number): false {
  if (existingSize !== size) {
    throw new StoreError('conflict', `${action}: an object of that name exists with ${existingSize} bytes instead of ${size}; run coffer check`);
  }
  return false;
}

/** The error for a read of `range` that reaches past the end of the object. */
export function pastEnd(action: string, range: ByteRange): StoreError {
  return new StoreError('permanent', `${action}: bytes ${range.offset}..${range.offset + range.length} reach past the end of the object`);
}

/**
 * The requested range out of what an HTTP server sent (S3, REST). Servers may send more than asked:
 * the whole object when they ignore Range, or up to the end (s3rver reads 'bytes=0-0' as 'bytes=0-').
 * A range that starts inside the object but ends past it comes back short rather than as an error, and
 * one past the end may come back empty (rclone: 206 with 'bytes 10-4/5').
 */
export function cutRange(bytes: Buffer, contentRange: string | undefined, range: ByteRange, action: string): Buffer {
  const start = contentRange ? Number(/^bytes (\d+)-/.exec(contentRange)?.[1] ?? NaN) : 0;
  const from = range.offset - start;
  if (!(from >= 0) || from + range.length > bytes.length) {
    if (Number.isNaN(start)) throw new StoreError('permanent', `${action}: the server answered with an unreadable Content-Range '${contentRange}'`);
    throw pastEnd(action, range);
  }
  return bytes.subarray(from, from + range.length);
}

/** Name of a pack object: packs are spread over 256 folders by their first two hex digits. */
export function packName(id: string): string {
  return `data/${id.slice(0, 2)}/${id}`;
}

/** The id at the end of an object name ('data/ab/ab12…' → 'ab12…'). */
export function idOf(name: string): string {
  return name.slice(name.lastIndexOf('/') + 1);
}

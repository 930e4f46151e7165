// The names a repository is made of, and how big each kind of object may be. Every name that crosses
// a store boundary is checked here, whichever way it goes: names given to put/get/stat/delete are
// refused with an error, names that come back from a listing are skipped and reported. No backend
// joins a name into a path, a key or a URL before it passed, so a hostile bucket, SFTP server or
// planted file cannot make a store read or write outside the repository (docs/SECURITY.md).
//
// Adding a folder (deletion records, writer markers, …): add a row to FOLDERS with the pattern of the
// names it holds and the largest object it may hold. Every backend, and every listing, then accepts
// it; REST servers know only restic's folders, so it also needs a row in REST_FOLDERS (rest.ts) and
// docs/FORMAT.md (a test says so). Patterns must only accept names without '.', '..' or empty
// components, so that a name that passes is a safe relative path on every backend.
import { MAX_DELETION_RECORD_BYTES, MAX_PACK_BYTES, MAX_WRITER_MARKER_BYTES } from '../format/limits.ts';
import { escapeControl, quoteName } from '../format/text.ts';
import { StoreError } from './store.ts';

const KiB = 1024;
const MiB = 1024 * KiB;

export interface Folder {
  /** The folder below the repository root: 'keys', 'data', … */
  readonly dir: string;
  /** Whole object names in it: 'keys/<64 hex>'. */
  readonly names: RegExp;
  /** Sub-folders a listing walks into ('data/ab'); none when absent. */
  readonly subfolders?: RegExp;
  /** Bytes an object of this folder may have; a bigger one is refused before it is read. */
  readonly maxSize: number;
}

/** Limits of objects that must stay small: they are read whole and parsed in memory. */
const MAX_CONFIG_BYTES = 64 * KiB;
const MAX_KEY_FILE_BYTES = 64 * KiB;
const MAX_SNAPSHOT_BYTES = 16 * MiB;
const MAX_INDEX_BYTES = 256 * MiB;

export const CONFIG_NAME = 'config';
/**
 * Folders of the objects that deletion and concurrency add (docs/FORMAT.md section 12): deletion records
 * are replicated like snapshots; writer markers belong to one store and are never copied.
 */
export const DELETIONS_DIR = 'deletions';
export const WRITERS_DIR = 'writers';
/** Where local and SFTP stores write an object before linking or renaming it into place (prune cleans it). */
export const TMP_DIR = 'tmp';

/** Modes of what a store creates where it can choose (local, SFTP): private to the owner, as restic does. */
export const OBJECT_MODE = 0o600;
export const FOLDER_MODE = 0o700;

export const FOLDERS: readonly Folder[] = [
  { dir: 'keys', names: /^keys\/[0-9a-f]{64}$/, maxSize: MAX_KEY_FILE_BYTES },
  // Packs are spread over 256 sub-folders named by the first two digits of their id.
  { dir: 'data', names: /^data\/([0-9a-f]{2})\/\1[0-9a-f]{62}$/, subfolders: /^data\/[0-9a-f]{2}$/, maxSize: MAX_PACK_BYTES },
  { dir: 'index', names: /^index\/[0-9a-f]{64}$/, maxSize: MAX_INDEX_BYTES },
  { dir: 'snapshots', names: /^snapshots\/[0-9a-f]{64}$/, maxSize: MAX_SNAPSHOT_BYTES },
  { dir: DELETIONS_DIR, names: /^deletions\/[0-9a-f]{64}$/, maxSize: MAX_DELETION_RECORD_BYTES },
  { dir: WRITERS_DIR, names: /^writers\/[0-9a-f]{64}$/, maxSize: MAX_WRITER_MARKER_BYTES },
  // Uploads in progress of the local and SFTP stores, and the probe of a test-write: named by its
  // SHA-256 since REST servers check that (coffer-probe-… is what older versions left behind).
  { dir: TMP_DIR, names: /^tmp\/(?:[0-9a-f]{24}\.tmp|[0-9a-f]{64}|coffer-probe-[0-9a-f]{16})$/, maxSize: MAX_PACK_BYTES },
];

const BY_DIR = new Map(FOLDERS.map((folder) => [folder.dir, folder]));

/** Told about a listed entry that is not an object of the folder: it is skipped, never yielded. */
export type ForeignObjectHandler = (name: string, reason: string) => void;

/** The folder holding `name`, or undefined when `name` is not a repository object name (or is `config`). */
function folderOf(name: string): Folder | undefined {
  const folder = BY_DIR.get(name.slice(0, name.indexOf('/')));
  return folder?.names.test(name) ? folder : undefined;
}

export function isObjectName(name: string): boolean {
  return name === CONFIG_NAME || folderOf(name) !== undefined;
}

/** Throws unless `name` is an object name of the layout; backends call it before using a name. */
export function checkObjectName(name: string, action: string): void {
  if (!isObjectName(name)) throw new StoreError('permanent', `${escapeControl(action)}: ${quoteName(name)} is not an object name of a Coffer repository; refusing it`);
}

/** Throws unless `dir` is a folder of the layout (what list() accepts). */
export function checkFolder(dir: string, action: string): Folder {
  const folder = BY_DIR.get(dir);
  if (!folder) throw new StoreError('permanent', `${escapeControl(action)}: ${quoteName(dir)} is not a folder of a Coffer repository; refusing it`);
  return folder;
}

/** Whether a listing of `folder` walks into the directory `path` (a name relative to the root, such as 'data/ab'). */
export function isSubfolder(folder: Folder, path: string): boolean {
  return folder.subfolders?.test(path) ?? false;
}

/** Whether a listing of `folder` may yield `name`. */
export function belongsTo(folder: Folder, name: string): boolean {
  return folder.names.test(name);
}

/** The largest object `name` may be (names must have passed checkObjectName). */
export function maxObjectSize(name: string): number {
  return folderOf(name)?.maxSize ?? MAX_CONFIG_BYTES;
}

/**
 * Throws when an object of `size` bytes is too big for its name, before any of it is read: a hostile
 * server or a planted sparse file must not make a reader allocate gigabytes.
 */
export function checkObjectSize(name: string, size: number, action: string): void {
  const max = maxObjectSize(name);
  if (!(Number.isSafeInteger(size) && size >= 0 && size <= max)) {
    throw new StoreError('permanent', `${action}: the object has ${size} bytes, more than such an object may have (${max}); it was not written by Coffer`);
  }
}

/** Whether a size from a listing is possible for the object at all (a safe, non-negative integer within its limit). */
export function plausibleSize(name: string, size: unknown): size is number {
  return typeof size === 'number' && Number.isSafeInteger(size) && size >= 0 && size <= maxObjectSize(name);
}

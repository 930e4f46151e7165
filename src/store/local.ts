// A repository in a local directory (or a mounted NAS). Writes go to tmp/, are fsynced, then hard-linked
// into place: link() fails if the name exists, so an object is never overwritten and a crash never
// leaves a half-written object under its real name.
//
// Names are checked against the layout before they are joined into a path, and the folders they lead
// through (keys, data, data/ab, …) must be real directories, not symbolic links: a planted link must
// not make a write land elsewhere. Objects are opened without following links and must be regular
// files (a FIFO named `config` would hang every read). New files are 0600 and folders 0700, so other
// local users can neither copy a key file nor read what the repository holds.
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import { constants, type Stats } from 'node:fs';
import path from 'node:path';
import { TMP_DIR, belongsTo, checkFolder, checkObjectName, checkObjectSize, FOLDER_MODE, isSubfolder, OBJECT_MODE, plausibleSize, type Folder, type ForeignObjectHandler } from './layout.ts';
import { makeDirectories, MakeDirectoryError } from './make-directories.ts';
import { discard } from '../format/discard.ts';
import { StoreError, alreadyStored, pastEnd, type ByteRange, type ObjectInfo, type ObjectSource, type PutOptions, type Store } from './store.ts';
const OPEN_OBJECT = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException).code;
}

export function describeFsError(err: unknown, action: string): StoreError {
  if (err instanceof StoreError) return err;
  const code = errno(err);
  const detail = (err as Error).message;
  switch (code) {
    case 'ENOENT':
      return new StoreError('not-found', `${action}: not found`, { cause: err });
    case 'ENOSPC':
    case 'EDQUOT':
      return new StoreError('no-space', `${action}: no space left on device; free some space and run again`, { cause: err });
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return new StoreError('denied', `${action}: permission denied (${code})`, { cause: err });
    case 'ELOOP':
      return new StoreError('permanent', `${action}: the object is a symbolic link; a repository holds regular files only`, { cause: err });
    case 'EIO':
    case 'ETIMEDOUT':
    case 'EAGAIN':
      return new StoreError('transient', `${action}: ${detail}`, { cause: err });
    default:
      return new StoreError('permanent', `${action}: ${detail}`, { cause: err });
  }
}

/**
 * Makes a folder of the store and any missing parent (the repository's own directory on first use).
 * Not with Node's recursive mkdir, which spins for ever on a path that /proc refuses.
 */
function makeStoreDirectory(dir: string, action: string): void {
  try {
    makeDirectories(dir, FOLDER_MODE);
  } catch (err) {
    if (!(err instanceof MakeDirectoryError)) throw err;
    const denied = err.code === 'EACCES' || err.code === 'EPERM' || err.code === 'EROFS';
    throw new StoreError(denied ? 'denied' : err.code === 'ENOSPC' || err.code === 'EDQUOT' ? 'no-space' : 'permanent', `${action}: ${err.message}`, { cause: err });
  }
}

export interface LocalStoreOptions {
  /** Told about each listed entry that is not a repository object (skipped). */
  readonly onForeign?: ForeignObjectHandler;
}

export class LocalStore implements Store {
  readonly location: string;
  private readonly root: string;
  private readonly onForeign: ForeignObjectHandler;
  /** Folders found to be real directories ('data', 'data/ab', …); checked once per process. */
  private readonly verified = new Set<string>();

  constructor(root: string, options: LocalStoreOptions = {}) {
    this.root = path.resolve(root);
    this.location = this.root;
    this.onForeign = options.onForeign ?? (() => {});
  }

  /** The path of a name that passed the layout check. */
  private file(name: string): string {
    return path.join(this.root, ...name.split('/'));
  }

  /**
   * Checks that `folderPath` ('data/ab') and the folders above it are real directories, creating missing
   * ones when `create`; false when one is missing. A symbolic link or a file in their place is refused.
   */
  private async folders(folderPath: string, create: boolean, action: string): Promise<boolean> {
    const parts = folderPath === '' ? [] : folderPath.split('/');
    for (let i = 1; i <= parts.length; i++) {
      const folder = parts.slice(0, i).join('/');
      if (this.verified.has(folder)) continue;
      const dir = this.file(folder);
      let st = await lstatOrUndefined(dir, action);
      if (!st) {
        if (!create) return false;
        makeStoreDirectory(dir, action);
        st = await lstatOrUndefined(dir, action);
        if (!st) throw new StoreError('transient', `${action}: ${dir} vanished right after it was made`);
      }
      if (!st.isDirectory()) {
        throw new StoreError('permanent', `${action}: ${dir} is ${st.isSymbolicLink() ? 'a symbolic link' : 'not a directory'}; a repository folder must be a directory of its own`);
      }
      this.verified.add(folder);
    }
    return true;
  }

  async put(name: string, data: Uint8Array, options?: PutOptions): Promise<boolean> {
    return this.write(name, data, options);
  }

  async putFrom(name: string, source: ObjectSource, options?: PutOptions): Promise<boolean> {
    return this.write(name, source, options);
  }

  private async write(name: string, data: Uint8Array | ObjectSource, options?: PutOptions): Promise<boolean> {
    const action = `writing ${name} to ${this.location}`;
    checkObjectName(name, action);
    options?.signal?.throwIfAborted();
    const tmpName = `${TMP_DIR}/${crypto.randomBytes(12).toString('hex')}.tmp`;
    const tmp = this.file(tmpName);
    for (let attempt = 1; ; attempt++) {
      await this.folders(TMP_DIR, true, action);
      await this.folders(parentOf(name), true, action);
      try {
        await writeDurably(tmp, data, options?.signal);
        break;
      } catch (err) {
        await fs.rm(tmp, { force: true });
        // The folder went away after it was checked (someone removed tmp/): check and create again.
        if (errno(err) !== 'ENOENT' || attempt > 1) throw describeFsError(err, action);
        this.verified.clear();
      }
    }
    try {
      // Stopped while the bytes went to disk: the temporary file goes, nothing takes the name.
      options?.signal?.throwIfAborted();
      return await this.linkIntoPlace(tmp, name, data instanceof Uint8Array ? data.length : data.size, action);
    } finally {
      await fs.rm(tmp, { force: true });
    }
  }

  private async linkIntoPlace(tmp: string, name: string, size: number, action: string): Promise<boolean> {
    const final = this.file(name);
    for (let attempt = 1; ; attempt++) {
      try {
        await fs.link(tmp, final);
        await syncDir(path.dirname(final));
        return true;
      } catch (err) {
        const code = errno(err);
        if (code === 'EEXIST') return this.sameSize(name, size, action);
        if (code === 'ENOENT' && attempt === 1) {
          this.verified.clear();
          await this.folders(parentOf(name), true, action);
          continue;
        }
        // File systems without hard links (FAT, some network mounts): check, then rename.
        if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP') {
          if (await this.stat(name)) return this.sameSize(name, size, action);
          await fs.rename(tmp, final).catch((e) => Promise.reject(describeFsError(e, action)));
          await syncDir(path.dirname(final));
          return true;
        }
        throw describeFsError(err, action);
      }
    }
  }

  private async sameSize(name: string, size: number, action: string): Promise<boolean> {
    const existing = await this.stat(name);
    if (!existing) throw new StoreError('transient', `${action}: the object vanished while it was being written`);
    return alreadyStored(action, existing.size, size);
  }

  async get(name: string, range?: ByteRange): Promise<Buffer> {
    const action = `reading ${name} from ${this.location}`;
    checkObjectName(name, action);
    if (!(await this.folders(parentOf(name), false, action))) throw new StoreError('not-found', `${action}: not found`);
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(this.file(name), OPEN_OBJECT);
    } catch (err) {
      throw describeFsError(err, action);
    }
    try {
      const st = await handle.stat();
      if (!st.isFile()) throw new StoreError('permanent', `${action}: the object is not a regular file; a repository holds regular files only`);
      if (range) {
        checkObjectSize(name, range.length, action);
        if (range.offset + range.length > st.size) throw pastEnd(action, range);
      } else {
        checkObjectSize(name, st.size, action);
      }
      const size = range ? range.length : st.size;
      const buf = Buffer.allocUnsafe(size);
      let done = 0;
      while (done < size) {
        const { bytesRead } = await handle.read(buf, done, size - done, (range?.offset ?? 0) + done);
        if (bytesRead === 0) throw new StoreError('permanent', `${action}: object is shorter than expected (truncated?)`);
        done += bytesRead;
      }
      return buf;
    } catch (err) {
      throw describeFsError(err, action);
    } finally {
      await handle.close();
    }
  }

  async stat(name: string): Promise<ObjectInfo | undefined> {
    const action = `checking ${name} in ${this.location}`;
    checkObjectName(name, action);
    if (!(await this.folders(parentOf(name), false, action))) return undefined;
    let st;
    try {
      st = await fs.lstat(this.file(name));
    } catch (err) {
      if (errno(err) === 'ENOENT') return undefined;
      throw describeFsError(err, action);
    }
    if (!st.isFile()) throw new StoreError('permanent', `${action}: the object is ${st.isSymbolicLink() ? 'a symbolic link' : 'not a regular file'}; a repository holds regular files only`);
    return { name, size: st.size, modified: st.mtimeMs };
  }

  async *list(dir: string): AsyncIterable<ObjectInfo> {
    const action = `listing ${dir} in ${this.location}`;
    const folder = checkFolder(dir, action);
    if (!(await this.folders(dir, false, action))) return;
    yield* this.walk(folder, dir, action);
  }

  /** The objects below `dir` (a folder of the layout, checked); anything else is reported and skipped. */
  private async *walk(folder: Folder, dir: string, action: string): AsyncGenerator<ObjectInfo> {
    let entries;
    try {
      entries = await fs.readdir(this.file(dir), { withFileTypes: true });
    } catch (err) {
      if (errno(err) === 'ENOENT') return;
      throw describeFsError(err, action);
    }
    for (const entry of entries) {
      const name = `${dir}/${entry.name}`;
      if (entry.isDirectory()) {
        if (isSubfolder(folder, name)) yield* this.walk(folder, name, action);
        else this.onForeign(name, 'a directory that is not part of the repository layout');
      } else if (!entry.isFile()) {
        this.onForeign(name, entry.isSymbolicLink() ? 'a symbolic link (a repository holds regular files only)' : 'not a regular file');
      } else if (!belongsTo(folder, name)) {
        this.onForeign(name, 'not an object name of a Coffer repository');
      } else {
        const info = await this.stat(name).catch((err: unknown) => {
          // Replaced by something else since readdir: report it, go on with the rest.
          if (err instanceof StoreError && err.kind === 'permanent') this.onForeign(name, err.message);
          else throw err;
          return undefined;
        });
        if (!info) continue;
        if (plausibleSize(name, info.size)) yield info;
        else this.onForeign(name, `${info.size} bytes, more than such an object may have; not written by Coffer`);
      }
    }
  }

  async delete(name: string): Promise<void> {
    const action = `deleting ${name} from ${this.location}`;
    checkObjectName(name, action);
    if (!(await this.folders(parentOf(name), false, action))) return;
    try {
      await fs.unlink(this.file(name));
    } catch (err) {
      if (errno(err) !== 'ENOENT') throw describeFsError(err, action);
    }
  }

  async close(): Promise<void> {}
}

async function lstatOrUndefined(file: string, action: string): Promise<Stats | undefined> {
  try {
    return await fs.lstat(file);
  } catch (err) {
    if (errno(err) === 'ENOENT') return undefined;
    throw describeFsError(err, action);
  }
}

/** Writes `file` (which must not exist) with mode 0600 and flushes it to the disk. */
/** Bytes copied at a time from an ObjectSource. */
const COPY_PIECE = 1024 * 1024;

async function writeDurably(file: string, data: Uint8Array | ObjectSource, signal: AbortSignal | undefined): Promise<void> {
  const handle = await fs.open(file, 'wx', OBJECT_MODE);
  try {
    if (data instanceof Uint8Array) await writeAll(handle, data);
    else await copyFrom(handle, data, signal);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function writeAll(handle: fs.FileHandle, data: Uint8Array): Promise<void> {
  let done = 0;
  while (done < data.length) done += (await handle.write(data, done, data.length - done)).bytesWritten;
}

async function copyFrom(handle: fs.FileHandle, source: ObjectSource, signal: AbortSignal | undefined): Promise<void> {
  const piece = Buffer.allocUnsafeSlow(Math.min(COPY_PIECE, source.size));
  try {
    for (let copied = 0; copied < source.size; ) {
      signal?.throwIfAborted();
      const n = await source.read(piece.subarray(0, Math.min(piece.length, source.size - copied)), copied);
      if (n === 0) throw new Error(`the source ends after ${copied} of its ${source.size} bytes`);
      await writeAll(handle, piece.subarray(0, n));
      copied += n;
    }
  } finally {
    // Freed now: one per pack left to the collector piles up unseen (format/discard.ts).
    discard(piece);
  }
}

/** The folder of an object name ('' for config). */
function parentOf(name: string): string {
  const slash = name.lastIndexOf('/');
  return slash < 0 ? '' : name.slice(0, slash);
}

async function syncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}


// A repository in a local directory (or a mounted NAS). Writes go to tmp/, are fsynced, then hard-linked
// into place: link() fails if the name exists, so an object is never overwritten and a crash never
// leaves a half-written object under its real name.
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { StoreError, alreadyStored, type ByteRange, type ObjectInfo, type Store } from './store.ts';

const TMP_DIR = 'tmp';

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException).code;
}

export function describeFsError(err: unknown, action: string): StoreError {
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
    case 'EIO':
    case 'ETIMEDOUT':
    case 'EAGAIN':
      return new StoreError('transient', `${action}: ${detail}`, { cause: err });
    default:
      return new StoreError('permanent', `${action}: ${detail}`, { cause: err });
  }
}

export class LocalStore implements Store {
  readonly location: string;
  private readonly root: string;

  constructor(root: string) {
    this.root = path.resolve(root);
    this.location = this.root;
  }

  private file(name: string): string {
    return path.join(this.root, ...name.split('/'));
  }

  async put(name: string, data: Uint8Array): Promise<boolean> {
    const final = this.file(name);
    const tmpDir = path.join(this.root, TMP_DIR);
    const tmp = path.join(tmpDir, `${crypto.randomBytes(12).toString('hex')}.tmp`);
    const action = `writing ${name} to ${this.location}`;
    try {
      await writeDurably(tmp, data);
    } catch (err) {
      await fs.rm(tmp, { force: true });
      if (errno(err) !== 'ENOENT') throw describeFsError(err, action);
      await fs.mkdir(tmpDir, { recursive: true }).catch((e) => Promise.reject(describeFsError(e, action)));
      return this.put(name, data);
    }
    try {
      return await this.linkIntoPlace(tmp, final, data.length, action);
    } finally {
      await fs.rm(tmp, { force: true });
    }
  }

  private async linkIntoPlace(tmp: string, final: string, size: number, action: string): Promise<boolean> {
    for (;;) {
      try {
        await fs.link(tmp, final);
        await syncDir(path.dirname(final));
        return true;
      } catch (err) {
        const code = errno(err);
        if (code === 'EEXIST') return this.sameSize(final, size, action);
        if (code === 'ENOENT') {
          await fs.mkdir(path.dirname(final), { recursive: true }).catch((e) => Promise.reject(describeFsError(e, action)));
          continue;
        }
        // File systems without hard links (FAT, some network mounts): check, then rename.
        if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP') {
          const existing = await fs.stat(final).catch(() => undefined);
          if (existing) return this.sameSize(final, size, action);
          await fs.rename(tmp, final).catch((e) => Promise.reject(describeFsError(e, action)));
          await syncDir(path.dirname(final));
          return true;
        }
        throw describeFsError(err, action);
      }
    }
  }

  private async sameSize(final: string, size: number, action: string): Promise<boolean> {
    return alreadyStored(action, (await fs.stat(final)).size, size);
  }

  async get(name: string, range?: ByteRange): Promise<Buffer> {
    const action = `reading ${name} from ${this.location}`;
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(this.file(name), 'r');
    } catch (err) {
      throw describeFsError(err, action);
    }
    try {
      const size = range ? range.length : (await handle.stat()).size;
      const buf = Buffer.allocUnsafe(size);
      let done = 0;
      while (done < size) {
        const { bytesRead } = await handle.read(buf, done, size - done, (range?.offset ?? 0) + done);
        if (bytesRead === 0) throw new StoreError('permanent', `${action}: object is shorter than expected (truncated?)`);
        done += bytesRead;
      }
      return buf;
    } catch (err) {
      throw err instanceof StoreError ? err : describeFsError(err, action);
    } finally {
      await handle.close();
    }
  }

  async stat(name: string): Promise<ObjectInfo | undefined> {
    try {
      const st = await fs.stat(this.file(name));
      return { name, size: st.size };
    } catch (err) {
      if (errno(err) === 'ENOENT') return undefined;
      throw describeFsError(err, `checking ${name} in ${this.location}`);
    }
  }

  async *list(dir: string): AsyncIterable<ObjectInfo> {
    yield* this.walk(dir);
  }

  private async *walk(dir: string): AsyncGenerator<ObjectInfo> {
    let entries;
    try {
      entries = await fs.readdir(this.file(dir), { withFileTypes: true });
    } catch (err) {
      if (errno(err) === 'ENOENT') return;
      throw describeFsError(err, `listing ${dir} in ${this.location}`);
    }
    for (const entry of entries) {
      const name = `${dir}/${entry.name}`;
      if (entry.isDirectory()) yield* this.walk(name);
      else if (entry.isFile()) {
        const info = await this.stat(name);
        if (info) yield info;
      }
    }
  }

  async delete(name: string): Promise<void> {
    try {
      await fs.unlink(this.file(name));
    } catch (err) {
      if (errno(err) !== 'ENOENT') throw describeFsError(err, `deleting ${name} from ${this.location}`);
    }
  }

  async close(): Promise<void> {}
}

async function writeDurably(file: string, data: Uint8Array): Promise<void> {
  const handle = await fs.open(file, 'wx');
  try {
    let done = 0;
    while (done < data.length) done += (await handle.write(data, done, data.length - done)).bytesWritten;
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function syncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

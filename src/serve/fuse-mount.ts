// `coffer mount`: the snapshot file system (engine/snapshot-fs.ts) mounted through FUSE with the
// optional fuse-native package (libfuse 2; Linux and macOS). Read-only: every call that would change
// something answers EROFS. fuse-native runs each callback on the main thread, so nothing here may
// block on the mount itself; all work is asynchronous and answers through the callback.
import { createRequire } from 'node:module';
import { NodeType } from '../format/tree.ts';
import type { FsEntry, SnapshotFs } from '../engine/snapshot-fs.ts';

/** The part of fuse-native's API used here (it ships no types). */
interface FuseStat {
  mtime: Date;
  atime: Date;
  ctime: Date;
  size: number;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
}
type Callback = (code: number, ...values: unknown[]) => void;
interface FuseInstance {
  mount(cb: (err: Error | null) => void): void;
  unmount(cb: (err: Error | null) => void): void;
}
interface FuseModule {
  new (mnt: string, ops: Record<string, (...args: never[]) => void>, opts: Record<string, unknown>): FuseInstance;
  readonly ENOENT: number;
  readonly EROFS: number;
  readonly EIO: number;
  readonly EINVAL: number;
}

export class FuseUnavailableError extends Error {
  override name = 'FuseUnavailableError';
}

/** Loads fuse-native, or says why FUSE cannot be used on this machine. */
export function loadFuse(): FuseModule {
  try {
    return createRequire(import.meta.url)('fuse-native') as FuseModule;
  } catch (err) {
    throw new FuseUnavailableError(`the fuse-native package could not be loaded (${(err as Error).message.split('\n')[0]})`);
  }
}

const TYPE_BITS: Partial<Record<NodeType, number>> = {
  [NodeType.File]: 0o100000,
  [NodeType.Dir]: 0o040000,
  [NodeType.Symlink]: 0o120000,
  [NodeType.Fifo]: 0o010000,
  [NodeType.CharDevice]: 0o020000,
  [NodeType.BlockDevice]: 0o060000,
  [NodeType.Socket]: 0o140000,
};

function statOf(entry: FsEntry): FuseStat {
  const size = entry.type === NodeType.Symlink ? (entry.node?.linkTarget?.length ?? 0) : entry.size;
  // Write bits are dropped: nothing can be written here.
  return { mtime: entry.mtime, atime: entry.mtime, ctime: entry.mtime, size, mode: (TYPE_BITS[entry.type] ?? 0o100000) | (entry.mode & 0o7555), uid: entry.uid, gid: entry.gid, nlink: 1 };
}

/** fuse-native hands paths as strings decoded from the kernel's bytes as UTF-8; names that are not UTF-8 are not reachable. */
function partsOf(p: string): Buffer[] {
  return p
    .split('/')
    .filter((s) => s !== '')
    .map((s) => Buffer.from(s));
}

const WRITE_OPS = ['truncate', 'ftruncate', 'chown', 'chmod', 'mknod', 'setxattr', 'removexattr', 'write', 'create', 'utimens', 'unlink', 'rename', 'link', 'symlink', 'mkdir', 'rmdir'];

export interface Mounted {
  unmount(): Promise<void>;
}

export function mountSnapshots(Fuse: FuseModule, fsys: SnapshotFs, dir: string, onError: (err: Error, path: string) => void): Promise<Mounted> {
  const open = new Map<number, FsEntry>();
  let nextFd = 1;
  /** Runs an async lookup and answers the kernel; any failure is an I/O error (and reported). */
  const answer = (cb: Callback, p: string, work: () => Promise<[number, ...unknown[]]>): void => {
    work().then(
      (result) => cb(...result),
      (err: Error) => {
        onError(err, p);
        cb(Fuse.EIO);
      },
    );
  };
  const ops: Record<string, (...args: never[]) => void> = {
    getattr: (p: string, cb: Callback) =>
      answer(cb, p, async () => {
        const entry = await fsys.lookup(partsOf(p));
        return entry ? [0, statOf(entry)] : [Fuse.ENOENT];
      }),
    readdir: (p: string, cb: Callback) =>
      answer(cb, p, async () => {
        const entry = await fsys.lookup(partsOf(p));
        if (!entry) return [Fuse.ENOENT];
        const children = await fsys.list(entry);
        return [0, children.map((c) => c.name.toString()), children.map(statOf)];
      }),
    readlink: (p: string, cb: Callback) =>
      answer(cb, p, async () => {
        const entry = await fsys.lookup(partsOf(p));
        return entry?.node?.linkTarget ? [0, entry.node.linkTarget.toString()] : [Fuse.EINVAL];
      }),
    open: (p: string, flags: number, cb: Callback) =>
      answer(cb, p, async () => {
        // O_WRONLY or O_RDWR: nothing here can be written.
        if ((flags & 3) !== 0) return [Fuse.EROFS];
        const entry = await fsys.lookup(partsOf(p));
        if (!entry) return [Fuse.ENOENT];
        const fd = nextFd++;
        open.set(fd, entry);
        return [0, fd];
      }),
    release: (_p: string, fd: number, cb: Callback) => {
      open.delete(fd);
      cb(0);
    },
    read: (p: string, fd: number, buf: Buffer, length: number, position: number, cb: Callback) => {
      const entry = open.get(fd);
      if (!entry?.node || entry.type !== NodeType.File) {
        cb(0);
        return;
      }
      fsys.read(entry.node, position, length).then(
        (bytes) => cb(bytes.copy(buf)),
        (err: Error) => {
          onError(err, p);
          cb(Fuse.EIO);
        },
      );
    },
  };
  for (const op of WRITE_OPS) ops[op] = (...args: never[]) => (args[args.length - 1] as unknown as Callback)(Fuse.EROFS);
  // force: a mount left by a process that was killed is unmounted first.
  const fuse = new Fuse(dir, ops, { force: true, mkdir: false, fsname: 'coffer', subtype: 'coffer', autoCache: true });
  return new Promise((resolve, reject) => {
    fuse.mount((err) => {
      if (err) reject(err);
      else resolve({ unmount: () => new Promise<void>((done, fail) => fuse.unmount((e) => (e ? fail(e) : done()))) });
    });
  });
}

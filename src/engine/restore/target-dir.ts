// Directories of a restore target, each opened by the restore itself without following links. Every
// restore write names its file relative to such a directory, with the name's raw bytes, so neither a
// symbolic link in the snapshot nor one planted in the target by a local user can redirect it, and
// names that are not valid UTF-8 are never mangled into other names.
//
// Node has no openat(): on Linux a path below /proc/self/fd/<fd>/ resolves through the open directory
// itself (what openat does). Elsewhere the directory's full path is used instead: still raw bytes, but
// a local user swapping a directory for a link while the restore runs is not kept out (SECURITY.md).
import fs from 'node:fs';
import { makeDirectories } from '../../store/make-directories.ts';

const FD_ROOT = fs.existsSync('/proc/self/fd') ? '/proc/self/fd' : undefined;
const SLASH = Buffer.from('/');
const OPEN_DIRECTORY = fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW;

export class TargetDir {
  readonly fd: number;
  readonly parent: TargetDir | undefined;
  /** Name in the parent (the target's own path for the root). */
  readonly name: Buffer;
  private readonly prefix: Buffer | undefined;

  private constructor(fd: number, parent: TargetDir | undefined, name: Buffer) {
    this.fd = fd;
    this.parent = parent;
    this.name = name;
    this.prefix = FD_ROOT ? Buffer.from(`${FD_ROOT}/${fd}/`) : undefined;
  }

  /** The restore target (created if missing); the one path that is followed as given. */
  static openRoot(target: string): TargetDir {
    makeDirectories(target);
    const fd = fs.openSync(target, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    return new TargetDir(fd, undefined, Buffer.from(target));
  }

  /** A path naming `name` inside this directory, for any fs call (worker threads of this process too). */
  at(name: Buffer): Buffer {
    return Buffer.concat([this.prefix ?? Buffer.concat([this.fullPath(), SLASH]), name]);
  }

  /** Only without /proc: the directory's path from the root (computed on demand, so memory stays linear in depth). */
  private fullPath(): Buffer {
    const names: Buffer[] = [];
    for (let dir: TargetDir | undefined = this; dir; dir = dir.parent) names.unshift(dir.name);
    return Buffer.concat(names.flatMap((name, i) => (i === 0 ? [name] : [SLASH, name])));
  }

  /**
   * The child directory `name`, made with `mode` (0700 until the restore applies the directory's own)
   * unless a directory is there; anything else in its place is removed first. Never follows a link.
   */
  child(name: Buffer, mode: number): TargetDir {
    const path = this.at(name);
    const existing = fs.lstatSync(path, { throwIfNoEntry: false });
    if (existing && !existing.isDirectory()) fs.unlinkSync(path);
    if (!existing?.isDirectory()) fs.mkdirSync(path, { mode });
    return new TargetDir(fs.openSync(path, OPEN_DIRECTORY), this, name);
  }

  /**
   * How a child process that got this directory as its descriptor 3 names `name` (ASCII) in it: tools
   * such as mkfifo take paths as text, which cannot hold every byte of a name.
   */
  toolPath(name: string): string {
    if (FD_ROOT) return `${FD_ROOT}/3/${name}`;
    const path = this.at(Buffer.from(name));
    if (!Buffer.from(path.toString()).equals(path)) throw new Error('a directory above it has a name that is not valid UTF-8, which mkfifo and mknod cannot be given here');
    return path.toString();
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}

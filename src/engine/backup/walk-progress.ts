// What a dashboard shows of a backup's walk, beyond the counters: the files finished last, the
// directory finished last (with its duration and size, hence its speed), and the next directory
// waiting in the walk (with its size, once the counter thread has measured it). Kept cheap for the hot
// path: a file costs one array store (its path stays a Buffer until someone asks), a directory a few
// additions; the strings and the look-ahead are made only when progress is read, about once a second.
import type { SourceEntry } from './source-walk.ts';

export const RECENT_FILES = 15;
/** How far ahead in one listing the next directory is looked for. */
const LOOKAHEAD = 1000;

/** A directory the backup finished: duration from entering it to its last entry done, bytes and files below it. */
export interface DirectoryDone {
  readonly path: string;
  readonly durationMs: number;
  readonly bytes: number;
  readonly files: number;
}

/** The next directory waiting in the walk; bytes and files once the counter has measured it. */
export interface DirectoryAhead {
  readonly path: string;
  readonly bytes?: number;
  readonly files?: number;
}

/** Sizes of the directories near the top of each source, measured by the counter thread. */
export interface DirectorySize {
  readonly path: string;
  readonly bytes: number;
  readonly files: number;
}

/** Totals of one directory being walked. */
export interface DirectoryTally {
  readonly started: number;
  bytes: number;
  files: number;
}

export interface Level {
  readonly entries: readonly SourceEntry[];
  index: number;
}

export interface WalkDetails {
  readonly recentFiles: string[];
  readonly lastDirectory?: DirectoryDone;
  readonly nextDirectory?: DirectoryAhead;
}

export class WalkProgress {
  private readonly recent: (Buffer | undefined)[] = new Array<Buffer | undefined>(RECENT_FILES);
  private recentNext = 0;
  private readonly stack: Level[] = [];
  private readonly sizes = new Map<string, DirectorySize>();
  private last: DirectoryDone | undefined;
  private readonly now: () => number;

  constructor(now: () => number = Date.now) {
    this.now = now;
  }

  fileDone(path: Buffer): void {
    this.recent[this.recentNext] = path;
    this.recentNext = (this.recentNext + 1) % RECENT_FILES;
  }

  /** A listing the walk is going through; move `index` as it goes and call `leave` when done. */
  enter(entries: readonly SourceEntry[]): Level {
    const level = { entries, index: 0 };
    this.stack.push(level);
    return level;
  }

  leave(level: Level): void {
    const i = this.stack.lastIndexOf(level);
    if (i >= 0) this.stack.splice(i, 1);
  }

  startDirectory(): DirectoryTally {
    return { started: this.now(), bytes: 0, files: 0 };
  }

  /** A directory's last entry is done: it becomes the last completed directory, and its totals count in its parent's. */
  directoryDone(path: Buffer, tally: DirectoryTally, parent: DirectoryTally | undefined): void {
    if (parent) {
      parent.bytes += tally.bytes;
      parent.files += tally.files;
    }
    const text = path.toString();
    this.sizes.delete(text);
    this.last = { path: text, durationMs: this.now() - tally.started, bytes: tally.bytes, files: tally.files };
  }

  addSizes(sizes: readonly DirectorySize[]): void {
    for (const s of sizes) this.sizes.set(s.path, s);
  }

  details(): WalkDetails {
    const recentFiles: string[] = [];
    for (let i = 1; i <= RECENT_FILES; i++) {
      const path = this.recent[(this.recentNext - i + RECENT_FILES) % RECENT_FILES];
      if (path) recentFiles.push(path.toString());
    }
    const next = this.nextDirectory();
    return { recentFiles, ...(this.last ? { lastDirectory: this.last } : {}), ...(next ? { nextDirectory: next } : {}) };
  }

  /** The first directory after the current entry, innermost listing first. */
  private nextDirectory(): DirectoryAhead | undefined {
    for (let l = this.stack.length - 1; l >= 0; l--) {
      const { entries, index } = this.stack[l]!;
      for (let j = index + 1; j < entries.length && j <= index + LOOKAHEAD; j++) {
        if (!entries[j]!.stat.isDirectory()) continue;
        const path = entries[j]!.path.toString();
        const size = this.sizes.get(path);
        return { path, ...(size ? { bytes: size.bytes, files: size.files } : {}) };
      }
    }
    return undefined;
  }
}

// `mkdir -p` that always ends. Node's recursive mkdir loops for ever, at full CPU, on a path that a
// pseudo file system refuses (mkdir under /proc answers ENOENT however often it is asked); this one
// makes each missing level once and reports the first that cannot be made. Synchronous, so the job
// database and the configuration can use it too; it runs only when a directory is missing.
import fs from 'node:fs';
import path from 'node:path';

/** An error with the path it is about and the errno code of the cause (ENOTDIR, EACCES, …). */
export class MakeDirectoryError extends Error {
  override name = 'MakeDirectoryError';
  readonly code: string | undefined;
  readonly path: string;

  constructor(dir: string, code: string | undefined, reason: string) {
    super(`cannot create directory ${dir}: ${reason}`);
    this.code = code;
    this.path = dir;
  }
}

const REASONS: Record<string, string> = {
  ENOENT: 'the file system does not allow it',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'the file system is read-only',
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  ENOTDIR: 'a file is in the way',
};

function failure(dir: string, err: unknown): MakeDirectoryError {
  const code = (err as NodeJS.ErrnoException).code;
  return new MakeDirectoryError(dir, code, (code && REASONS[code]) ?? (err as Error).message);
}

function statOrUndefined(file: string): fs.Stats | undefined {
  try {
    return fs.statSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw failure(file, err);
  }
}

/** Creates `dir` and its missing parents (new ones with `mode`); a directory already there is fine. */
export function makeDirectories(dir: string, mode = 0o777): void {
  const missing: string[] = [];
  for (let current = path.resolve(dir); ; ) {
    const stat = statOrUndefined(current);
    if (stat) {
      if (!stat.isDirectory()) throw new MakeDirectoryError(dir, 'ENOTDIR', current === path.resolve(dir) ? 'it exists and is not a directory' : `${current} is not a directory`);
      break;
    }
    missing.push(current);
    const parent = path.dirname(current);
    if (parent === current) break;
    current = parent;
  }
  for (const level of missing.reverse()) {
    try {
      fs.mkdirSync(level, { mode });
    } catch (err) {
      // Made meanwhile by someone else: as good as made by us.
      if ((err as NodeJS.ErrnoException).code === 'EEXIST' && statOrUndefined(level)?.isDirectory()) continue;
      throw failure(level, err);
    }
  }
}

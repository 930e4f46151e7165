// Listing a source directory: raw-byte names (non-UTF-8 names survive), lstat (symlinks are never
// followed), exclude patterns applied. Shared by the backup walker and the counter that feeds the ETA.
// An entry that cannot be examined (a directory readable but not searchable, a path longer than the
// system takes) is reported, never thrown: one hostile directory must not stop a whole backup.
import fs from 'node:fs';
import { joinPath } from '../fs-meta.ts';
import { MATCH_NOTHING, type PathMatcher } from './exclude.ts';
import { compileMarkerRule, compileSelectionPatterns, type Selection } from './selection.ts';

export interface SourceEntry {
  readonly name: Buffer;
  readonly path: Buffer;
  readonly stat: fs.BigIntStats;
}

export interface WalkRules {
  readonly exclude: PathMatcher;
  /** Directories left out for a marker file inside (--exclude-caches, --exclude-if-present). */
  readonly excludeDir?: (dir: Buffer) => boolean;
  /** Files bigger than this are left out (--exclude-larger-than). */
  readonly maxFileSize?: bigint;
  /** Device of the source root when --one-file-system is on: other file systems are not entered. */
  readonly rootDevice?: bigint;
}

export interface Listing {
  readonly entries: SourceEntry[];
  /** Entries left out by the exclude patterns. */
  readonly excluded: number;
  /** Set when the directory itself could not be read. */
  readonly error?: NodeJS.ErrnoException;
  /** Entries whose lstat failed. */
  readonly unreadable: { readonly path: Buffer; readonly error: NodeJS.ErrnoException }[];
}

export function listDirectory(dir: Buffer, rules: WalkRules): Listing {
  let names: Buffer[];
  try {
    names = fs.readdirSync(dir, { encoding: 'buffer' });
  } catch (err) {
    return { entries: [], excluded: 0, error: err as NodeJS.ErrnoException, unreadable: [] };
  }
  const entries: SourceEntry[] = [];
  const unreadable: Listing['unreadable'] = [];
  let excluded = 0;
  for (const name of names) {
    const path = joinPath(dir, name);
    if (rules.exclude !== MATCH_NOTHING && rules.exclude(path.toString(), name.toString())) {
      excluded++;
      continue;
    }
    let stat;
    try {
      // An entry that vanished between readdir and lstat is simply not part of the snapshot.
      stat = fs.lstatSync(path, { bigint: true, throwIfNoEntry: false });
    } catch (err) {
      unreadable.push({ path, error: err as NodeJS.ErrnoException });
      continue;
    }
    if (!stat) continue;
    if (rules.maxFileSize !== undefined && stat.isFile() && stat.size > rules.maxFileSize) continue;
    if (rules.excludeDir && stat.isDirectory() && rules.excludeDir(path)) continue;
    entries.push({ name, path, stat });
  }
  return { entries, excluded, unreadable };
}

/** Whether a source given on the command line matches an exclude pattern itself (restic skips it then). */
export function sourceExcluded(source: string, exclude: PathMatcher): boolean {
  return exclude !== MATCH_NOTHING && exclude(source, source === '/' ? '' : (source.split('/').pop() ?? ''));
}

/** The rules of a walk from the user's selection (add `rootDevice` per source with --one-file-system). */
export function walkRules(selection: Selection): WalkRules {
  const excludeDir = compileMarkerRule(selection);
  return {
    exclude: compileSelectionPatterns(selection),
    ...(excludeDir ? { excludeDir } : {}),
    ...(selection.excludeLargerThan !== undefined ? { maxFileSize: BigInt(selection.excludeLargerThan) } : {}),
  };
}

/** Whether the walk goes into this directory (not across file systems with --one-file-system). */
export function entersDirectory(stat: fs.BigIntStats, rules: WalkRules): boolean {
  return rules.rootDevice === undefined || stat.dev === rules.rootDevice;
}

/** Why a source path could not be read, in words. */
export function readProblem(code: string | undefined, message: string): string {
  switch (code) {
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'ENAMETOOLONG':
      return 'the path is longer than the system can open (4096 bytes)';
    case 'ENOENT':
      return 'vanished before it could be read';
    case 'ELOOP':
      return 'too many levels of symbolic links';
    default:
      return message;
  }
}

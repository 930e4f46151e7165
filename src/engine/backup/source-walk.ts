// Listing a source directory: raw-byte names (non-UTF-8 names survive), lstat (symlinks are never
// followed), exclude patterns applied. Shared by the backup walker and the counter that feeds the ETA.
import fs from 'node:fs';
import { joinPath } from '../fs-meta.ts';
import { MATCH_NOTHING, type PathMatcher } from './exclude.ts';

export interface SourceEntry {
  readonly name: Buffer;
  readonly path: Buffer;
  readonly stat: fs.BigIntStats;
}

export interface WalkRules {
  readonly exclude: PathMatcher;
  /** Device of the source root when --one-file-system is on: other file systems are not entered. */
  readonly rootDevice?: bigint;
}

export interface Listing {
  readonly entries: SourceEntry[];
  /** Set when the directory itself could not be read. */
  readonly error?: NodeJS.ErrnoException;
}

export function listDirectory(dir: Buffer, rules: WalkRules): Listing {
  let names: Buffer[];
  try {
    names = fs.readdirSync(dir, { encoding: 'buffer' });
  } catch (err) {
    return { entries: [], error: err as NodeJS.ErrnoException };
  }
  const entries: SourceEntry[] = [];
  for (const name of names) {
    const path = joinPath(dir, name);
    if (rules.exclude !== MATCH_NOTHING && rules.exclude(path.toString(), name.toString())) continue;
    // An entry that vanished between readdir and lstat is simply not part of the snapshot.
    const stat = fs.lstatSync(path, { bigint: true, throwIfNoEntry: false });
    if (stat) entries.push({ name, path, stat });
  }
  return { entries };
}

/** Whether the walk goes into this directory (not across file systems with --one-file-system). */
export function entersDirectory(stat: fs.BigIntStats, rules: WalkRules): boolean {
  return rules.rootDevice === undefined || stat.dev === rules.rootDevice;
}

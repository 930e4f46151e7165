// What a backup leaves out, beyond exclude patterns: directories marked as caches (CACHEDIR.TAG) or
// holding a marker file, and files above a size. Plain data, so the counting thread gets the same
// rules as the walk; compiled into the WalkRules that listDirectory applies.
import fs from 'node:fs';
import { joinPath } from '../fs-meta.ts';
import { compileExcludes, MATCH_NOTHING, type PathMatcher } from './exclude.ts';

export interface Selection {
  /** restic patterns (see exclude.ts). */
  readonly excludes?: readonly string[];
  /** The same, matched case-insensitively. */
  readonly iexcludes?: readonly string[];
  /** Leave out a directory holding a file NAME, or NAME:HEADER (a file NAME that starts with HEADER). */
  readonly excludeIfPresent?: readonly string[];
  /** Leave out cache directories (a CACHEDIR.TAG with the standard signature, bford.info/cachedir). */
  readonly excludeCaches?: boolean;
  /** Leave out files bigger than this many bytes. */
  readonly excludeLargerThan?: number;
}

export const CACHEDIR_TAG = 'CACHEDIR.TAG:Signature: 8a477f597d28d172789f06886806bc55';

interface Marker {
  readonly name: Buffer;
  readonly header?: Buffer;
}

function parseMarker(spec: string): Marker {
  const colon = spec.indexOf(':');
  return colon < 0 ? { name: Buffer.from(spec) } : { name: Buffer.from(spec.slice(0, colon)), header: Buffer.from(spec.slice(colon + 1)) };
}

function hasMarker(dir: Buffer, marker: Marker): boolean {
  const file = joinPath(dir, marker.name);
  if (!marker.header) return fs.existsSync(file);
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    const head = Buffer.alloc(marker.header.length);
    return fs.readSync(fd, head, 0, head.length, 0) === head.length && head.equals(marker.header);
  } catch {
    return false;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Pattern matcher for excludes and case-insensitive excludes together. */
export function compileSelectionPatterns(selection: Selection): PathMatcher {
  const exact = compileExcludes(selection.excludes ?? []);
  const folded = compileExcludes(selection.iexcludes ?? [], { caseInsensitive: true });
  if (folded === MATCH_NOTHING) return exact;
  if (exact === MATCH_NOTHING) return folded;
  return (absolutePath, name) => exact(absolutePath, name) || folded(absolutePath, name);
}

/** Whether a directory is left out for a marker inside it; undefined when no marker rule is set. */
export function compileMarkerRule(selection: Selection): ((dir: Buffer) => boolean) | undefined {
  const markers = [...(selection.excludeIfPresent ?? []), ...(selection.excludeCaches ? [CACHEDIR_TAG] : [])].map(parseMarker);
  if (markers.length === 0) return undefined;
  return (dir) => markers.some((m) => hasMarker(dir, m));
}

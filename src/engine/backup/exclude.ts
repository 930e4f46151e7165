// Exclude patterns, with restic's meaning: a pattern without '/' matches a name at any depth
// ('*.tmp', 'node_modules'); one starting with '/' matches the absolute path from the root; any other
// pattern matches the end of the path ('cache/*.bin'). An excluded directory is not entered.
import fs from 'node:fs';
import picomatch from 'picomatch';

export type PathMatcher = (absolutePath: string, name: string) => boolean;

/** The matcher of an empty pattern list: callers skip building path strings for it. */
export const MATCH_NOTHING: PathMatcher = () => false;

export function compileExcludes(patterns: readonly string[], { caseInsensitive = false } = {}): PathMatcher {
  const options = { dot: true, nocase: caseInsensitive };
  const byName: picomatch.Matcher[] = [];
  const byPath: picomatch.Matcher[] = [];
  for (const raw of patterns) {
    const pattern = raw.trim().replace(/\/+$/, '');
    if (pattern === '') continue;
    if (!pattern.includes('/')) byName.push(picomatch(pattern, options));
    else if (pattern.startsWith('/')) byPath.push(picomatch(pattern, options));
    else byPath.push(picomatch(`**/${pattern}`, options));
  }
  if (byName.length === 0 && byPath.length === 0) return MATCH_NOTHING;
  return (absolutePath, name) => byName.some((m) => m(name)) || byPath.some((m) => m(absolutePath));
}

/** Patterns from a file: one per line; blank lines and lines starting with '#' are ignored. */
export function readExcludeFile(file: string): string[] {
  return fs
    .readFileSync(file, 'utf8')
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}

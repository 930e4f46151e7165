// Exclude patterns, with restic's meaning: a pattern without '/' matches a name at any depth
// ('*.tmp', 'node_modules'); one starting with '/' matches the absolute path from the root; any other
// pattern matches the end of the path ('cache/*.bin'). '!PATTERN' re-includes what an earlier pattern
// excluded: the last pattern that matches decides. An excluded directory is not entered, so to keep one
// entry of a directory, exclude its contents ('/data/*') rather than the directory, then re-include.
import fs from 'node:fs';
import picomatch from 'picomatch';

export type PathMatcher = (absolutePath: string, name: string) => boolean;

/** The matcher of an empty pattern list: callers skip building path strings for it. */
export const MATCH_NOTHING: PathMatcher = () => false;

interface Rule {
  readonly matches: PathMatcher;
  /** A '!' pattern: a match re-includes. */
  readonly negated: boolean;
}

function rule(raw: string, caseInsensitive: boolean): Rule | undefined {
  let pattern = raw.trim();
  // picomatch would read a leading '!' as "everything but": ours are handled here, in order.
  const negated = pattern.startsWith('!');
  if (negated) pattern = pattern.slice(1).trim();
  pattern = pattern.replace(/\/+$/, '');
  if (pattern === '') return undefined;
  const options = { dot: true, nocase: caseInsensitive };
  if (!pattern.includes('/')) {
    const byName = picomatch(pattern, options);
    return { negated, matches: (_path, name) => byName(name) };
  }
  const byPath = picomatch(pattern.startsWith('/') ? pattern : `**/${pattern}`, options);
  return { negated, matches: (absolutePath) => byPath(absolutePath) };
}

export function compileExcludes(patterns: readonly string[], { caseInsensitive = false } = {}): PathMatcher {
  const rules = patterns.map((p) => rule(p, caseInsensitive)).filter((r) => r !== undefined);
  if (!rules.some((r) => !r.negated)) return MATCH_NOTHING;
  if (!rules.some((r) => r.negated)) return (absolutePath, name) => rules.some((r) => r.matches(absolutePath, name));
  return (absolutePath, name) => {
    for (let i = rules.length - 1; i >= 0; i--) {
      const r = rules[i]!;
      if (r.matches(absolutePath, name)) return !r.negated;
    }
    return false;
  };
}

/** Patterns from a file: one per line; blank lines and lines starting with '#' are ignored. */
export function readExcludeFile(file: string): string[] {
  return fs
    .readFileSync(file, 'utf8')
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}

// Tags on the command line, as restic takes them: `--tag a,b` is the two tags a and b.

/** The tags of one --tag value: split on commas, blanks dropped. */
export function splitTags(value: string): string[] {
  return value.split(',').map((t) => t.trim()).filter((t) => t !== '');
}

/** commander parser for a repeatable --tag that adds tags (backup). */
export function collectTags(value: string, previous: string[] = []): string[] {
  return [...previous, ...splitTags(value)];
}

/** commander parser for a repeatable --tag filter: each value is a group whose tags must all be present. */
export function collectTagGroups(value: string, previous: string[][] = []): string[][] {
  const group = splitTags(value);
  return group.length === 0 ? previous : [...previous, group];
}
